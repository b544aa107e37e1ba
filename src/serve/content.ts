/**
 * Backed-up bytes going out: a file (decompressed), a directory as a tar or zip stream, or a
 * preview. The `dump` streams do the work (export/dump.ts); here they are pointed at the
 * response through a sink that waits for the client with a deadline (http.ts).
 *
 * Backed-up content is attacker-controlled, so it is never active: a download is
 * `application/octet-stream` with `Content-Disposition: attachment`; a preview is `text/plain`
 * (at most PREVIEW bytes) or an image type named by a raster extension (never SVG), each with a
 * sandboxing policy — and `nosniff` everywhere, so no browser guesses HTML.
 */
import type { ServerResponse } from 'node:http';
import { dumpArchive, dumpFile, type DumpOptions } from '../export/dump.js';
import { RevisitBudget } from '../browse/tree.js';
import { log } from '../log.js';
import { attachment, ClientGone, CONTENT_CSP, responseSink, securityHeaders } from './http.js';
import type { Item, Library } from './library.js';
import { imageType } from './pages.js';

export const PREVIEW = 256 * 1024;

class PreviewFull extends Error {}

export interface Outgoing {
  lib: Library;
  res: ServerResponse;
  signal: AbortSignal;
  /** A client that reads nothing for this long is dropped (ms). */
  idleMs: number;
  head?: boolean;
}

function options(o: Outgoing, sink: DumpOptions['sink']): DumpOptions {
  const c = o.lib.reader.config;
  return { client: o.lib.reader.client, dirs: o.lib.reader.dirs, sizes: o.lib.reader.sizes, retry: { attempts: c.http.interactive_retry.attempts, delays: c.http.interactive_retry.delay }, signal: o.signal, concurrency: c.operation.concurrency, revisits: new RevisitBudget(), sink };
}

/** Ends a response whose body is under way after a failure: the connection is cut (the client sees a short body, never a complete-looking one). */
function failedMidway(o: Outgoing, what: string, e: unknown): void {
  if (!(e instanceof ClientGone) && !o.signal.aborted) log.warn(`serve: ${what}: ${(e as Error).message}`);
  o.res.destroy();
}

/** A file's bytes as on disk: a download (attachment) or a preview (inert, cut at PREVIEW bytes). */
export async function sendFile(o: Outgoing, it: Item, shown: string, mode: 'download' | 'preview'): Promise<void> {
  const { res } = o;
  securityHeaders(res, CONTENT_CSP);
  const image = mode === 'preview' ? imageType(it.bytes) : undefined;
  if (mode === 'download') {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', attachment(it.bytes));
    if (it.size !== undefined) res.setHeader('Content-Length', it.size);
  } else {
    res.setHeader('Content-Type', image ?? 'text/plain; charset=utf-8');
    res.setHeader('Content-Disposition', 'inline');
    if (image && it.size !== undefined) res.setHeader('Content-Length', it.size);
  }
  res.statusCode = 200;
  if (o.head) return void res.end();
  const sink = responseSink(res, o.signal, o.idleMs);
  const limit = mode === 'preview' && !image ? PREVIEW : Infinity;
  try {
    await dumpFile(options(o, async (chunk) => {
      const room = limit - sink.written();
      if (room <= 0) throw new PreviewFull();
      await sink(chunk.length > room ? chunk.subarray(0, room) : chunk);
    }), it.child, it.entry, shown);
    res.end();
  } catch (e) {
    if (e instanceof PreviewFull) return void res.end();
    failedMidway(o, `sending ${JSON.stringify(shown)}`, e);
  }
}

/** A directory as a tar (POSIX pax) or zip stream, named after it. */
export async function sendArchive(o: Outgoing, format: 'tar' | 'zip', dircap: string, self: Item | undefined, filename: Buffer): Promise<void> {
  const { res } = o;
  securityHeaders(res, CONTENT_CSP);
  res.statusCode = 200;
  res.setHeader('Content-Type', format === 'tar' ? 'application/x-tar' : 'application/zip');
  res.setHeader('Content-Disposition', attachment(Buffer.concat([filename, Buffer.from(`.${format}`)])));
  if (o.head) return void res.end();
  const sink = responseSink(res, o.signal, o.idleMs);
  try {
    const report = await dumpArchive(options(o, sink), format, dircap, self ? { bytes: self.bytes, entry: self.entry } : undefined);
    if (report.skipped) log.warn(`serve: ${report.skipped} entries left out of an archive (each said above)`);
    res.end();
  } catch (e) {
    failedMidway(o, `sending a ${format} archive`, e);
  }
}
