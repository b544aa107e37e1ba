/**
 * A file's contents for an archive or for stdout: its bytes as on disk, xz decoded, checked.
 *
 * - `wholeContents`: a small file, downloaded (and decoded) into memory — before its header is
 *   written, so a download of the wrong size is made again as `http.retry` allows (fetch.ts),
 *   and one that stays wrong is that file's failure, not the archive's. Decoding stops past
 *   `plainLimit` (a small xz stream may expand to gigabytes): the file is then streamed.
 * - `openContents`: a larger file, streamed. Its size must be known before its header: the
 *   stored size (raw), or the plaintext size the edge or the entry cache gives (xz); an xz file
 *   whose size nobody knows is decoded into a private temporary file first (its size is then
 *   known, and the spool is read back). The request is made, and its first bytes received,
 *   before this returns: a file that cannot be read at all is found before its header is out.
 *   Past that, a body that ends short or runs long fails the member (writers check the count).
 */
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EntryError } from '../restore/dest.js';
import { checkedDownload, refetching, type RetryPolicy } from '../restore/fetch.js';
import type { TahoeClient } from '../tahoe/client.js';
import { unxz as unxzAny } from '../restore/unxz.js';
import { scavenged } from '../core/scavenge.js';

/** xz decoded on the calling thread (restore/unxz.ts: a worker's malloc arena keeps its pages). */
export const unxz = (src: AsyncIterable<Buffer>) => unxzAny(src, { synchronous: true });

export interface FetchContext {
  client: TahoeClient;
  retry: RetryPolicy;
  signal: AbortSignal;
  /** A private temporary directory for spools (made on first use). */
  spoolDir: () => string;
}

export interface Contents {
  size: number;
  body: AsyncIterable<Buffer>;
  /** Removes a spool (call when the body is done or abandoned). */
  dispose: () => void;
}

/**
 * A small file's bytes as on disk, or 'stream' when decoding ran past `plainLimit` (or past the
 * plaintext size the edge gives: a mismatch is that file's failure).
 */
export async function wholeContents(c: FetchContext, shown: string, cap: string, stored: number | undefined, xz: boolean, plainSize: number | undefined, plainLimit: number): Promise<Buffer | 'stream'> {
  return refetching(shown, c.retry, c.signal, async () => {
    const src = scavenged(checkedDownload(c.client, cap, stored));
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of xz ? unxz(src) : src) {
      n += chunk.length;
      if (plainSize !== undefined && n > plainSize) throw new EntryError(`its contents decode to more than the ${plainSize} bytes its size says`);
      if (n > plainLimit) return 'stream';
      chunks.push(chunk);
    }
    if (plainSize !== undefined && n !== plainSize) throw new EntryError(`its contents decode to ${n} bytes, not the ${plainSize} its size says`);
    return Buffer.concat(chunks);
  });
}

/** Hands out `first` and then the rest of `it`. */
async function* withFirst(first: IteratorResult<Buffer>, it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (first.done) return;
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  } finally {
    await it.return?.();
  }
}

/** A file's contents, streamed (see the file's comment). */
export async function openContents(c: FetchContext, shown: string, cap: string, stored: number | undefined, xz: boolean, plainSize: number | undefined): Promise<Contents> {
  if (xz && plainSize === undefined) return spool(c, shown, cap, stored);
  const size = xz ? plainSize! : stored;
  if (size === undefined) {
    // A raw file whose listing gives no size (not one of ours): its bytes are counted on a spool.
    return spool(c, shown, cap, undefined, false);
  }
  // Counted as decoded: a compressible file reads far more than it downloads (scavenge.ts).
  const src = checkedDownload(c.client, cap, stored);
  const it = scavenged(xz ? unxz(src) : src)[Symbol.asyncIterator]();
  const first = await it.next();
  return { size, body: withFirst(first, it), dispose: () => undefined };
}

/** Downloads (and decodes) the contents into a private temporary file, then reads it back. */
async function spool(c: FetchContext, shown: string, cap: string, stored: number | undefined, xz = true): Promise<Contents> {
  const path = join(c.spoolDir(), 'spool');
  const dispose = () => rmSync(path, { force: true });
  try {
    await refetching(shown, c.retry, c.signal, async () => {
      const src = checkedDownload(c.client, cap, stored);
      await pipeline(Readable.from(scavenged(xz ? unxz(src) : src), { objectMode: false }), createWriteStream(path, { mode: 0o600 }));
    });
    const size = statSync(path).size;
    return { size, body: scavenged(createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>), dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

/** A private directory for spools (0700), made when first needed; `remove` deletes it. */
export function spoolDirectory(): { get: () => string; remove: () => void } {
  let dir: string | undefined;
  return {
    get: () => (dir ??= mkdtempSync(join(tmpdir(), 'lafs-backup-dump-'))),
    remove: () => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
