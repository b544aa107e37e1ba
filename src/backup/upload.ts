/**
 * Sending one file's contents: read (small files whole, larger ones streamed by position),
 * looked up by SHA-256 in the content index, compressed when a sample says it pays, and PUT.
 * Files are opened as open-source.ts says (never blocking, checked, bounded). A failed read is a
 * SourceError; the client's errors are TahoeErrors.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import type { StoredAs } from '../cache/db.js';
import { sampleBlocks, sampleOf, samplePays, type Choice } from '../core/compression.js';
import { createXz } from '../core/xz.js';
import { fromSource, fromSourceAsync, sourceError } from '../errors.js';
import type { UploadContext } from './context.js';
import { changedSince, openSource, openSourceSync, type Opened } from './open-source.js';
import type { EntryStat } from './source-stat.js';
import { forgetUnhashed, twinOf, TwinSearch, unhashedUpload, type Unhashed } from './same-size.js';

/** Leaves an entry whose source could not be read out of the backup, counted and named. */
export type Stored = 'xz' | 'raw-by-name' | 'raw-by-size' | 'raw-by-content' | 'raw' | 'known';

export interface UploadedContents {
  cap: string;
  sha256: Buffer;
  changed: boolean;
  /** 'raw' or the xz encoding id, as the cache records it. */
  enc: StoredAs;
  how: Stored;
  /** This file's entry in ctx.uploading (its twins wait on it), until doneUploading. */
  inFlight?: string;
  /** Or, uploaded without a pre-hash, its entry in ctx.unhashed, until doneUploading. */
  unhashed?: { size: number; entry: Unhashed };
}

/**
 * Files up to this size are read in one go and sent with a known length: a couple of stream
 * chunks anyway, and a few synchronous calls cost far less than a stream pipeline and thread
 * pool round trips per file. Memory stays bounded: concurrency × SMALL_FILE.
 */
export const SMALL_FILE = 256 * 1024;

/** Reads a small file whole (up to its size when stat'ed and opened), noting whether it changed. */
function readSmall(ctx: UploadContext, abs: Buffer, shown: string, st: EntryStat): { data: Buffer; changed: boolean } {
  return fromSource(shown, () => {
    const { fd, opened } = openSourceSync(ctx, abs, shown, st);
    try {
      const data = Buffer.allocUnsafe(opened.limit);
      let read = 0;
      for (let n; read < data.length && (n = readSync(fd, data, read, data.length - read, read)) > 0; ) read += n;
      const changed = opened.changed || read !== opened.limit || changedSince(opened, fstatSync(fd, { bigint: true }));
      return { data: data.subarray(0, read), changed };
    } finally {
      closeSync(fd);
    }
  });
}

/** Stored raw because of the name or size (or xz is off): what the summary calls it. */
function rawBecause(choice: Choice): Stored {
  return choice === 'by-name' ? 'raw-by-name' : choice === 'by-size' ? 'raw-by-size' : choice === 'off' ? 'raw' : 'raw-by-content';
}

/**
 * Contents already stored (the content index of the cache): the cap and how it was stored,
 * preferring the encoding this file would get. Counted; no request.
 */
function known(ctx: UploadContext, sha256: Buffer, choice: Choice, size: number): { cap: string; enc: StoredAs } | undefined {
  const hit = ctx.cache?.knownContent(sha256, choice === 'contents' ? ctx.xz.id : 'raw');
  if (hit) countKnown(ctx, size);
  return hit;
}

function countKnown(ctx: UploadContext, size: number): void {
  ctx.stats.filesDeduplicated++;
  ctx.stats.bytesDeduplicated += size;
}

/**
 * Uploads contents once per run: a second file with the same contents while the first is
 * still being uploaded waits for it and takes its cap (the cache only knows finished ones).
 */
async function once(ctx: UploadContext, sha256: Buffer, size: number, send: () => Promise<UploadedContents>): Promise<UploadedContents> {
  if (!ctx.cache) return send();
  const id = sha256.toString('base64');
  const first = ctx.uploading.get(id);
  if (first) {
    const done = await first.catch(() => undefined);
    if (done && !done.changed) {
      countKnown(ctx, size);
      return { ...done, how: 'known', inFlight: undefined };
    }
    return send();
  }
  const p = send();
  ctx.uploading.set(id, p);
  try {
    // The entry stays until the caller has recorded the result in the cache (doneUploading):
    // dropped any earlier, a twin arriving in between would find neither and upload again.
    return { ...(await p), inFlight: id };
  } catch (e) {
    ctx.uploading.delete(id);
    throw e;
  }
}

/** The file's result is in the cache (or deliberately not): a later twin finds it there now. */
export function doneUploading(ctx: UploadContext, up: UploadedContents): void {
  if (up.inFlight) ctx.uploading.delete(up.inFlight);
  if (up.unhashed) forgetUnhashed(ctx, up.unhashed.size, up.unhashed.entry);
}

/** Uploads a small file's bytes: found by contents, compressed when that pays, or raw. */
async function uploadSmall(ctx: UploadContext, abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
  const { data, changed } = readSmall(ctx, abs, shown, st);
  const sha256 = createHash('sha256').update(data).digest();
  ctx.stats.bytesRead += data.length;
  ctx.stats.bytesDone += data.length;
  const hit = changed ? undefined : known(ctx, sha256, choice, data.length);
  if (hit) return { ...hit, sha256, changed, how: 'known' };
  const send = async (): Promise<UploadedContents> => {
    let body = data;
    let how = rawBecause(choice);
    if (choice === 'contents' && samplePays(sampleOf(data), ctx.xz.policy.minSaving)) {
      // A small file is compressed whole and stored raw when xz does not make it smaller.
      const xz = await ctx.encoders.run(() => xzBuffer(data, ctx.xz.settings));
      if (xz.length < data.length || ctx.xz.policy.minSaving === null) {
        body = xz;
        how = 'xz';
        ctx.stats.xzIn += data.length;
        ctx.stats.xzOut += xz.length;
      }
    }
    ctx.stats.bytesSent += body.length;
    const bytes = ctx.bytes;
    const cap = await ctx.client.putFile(() => (bytes ? Readable.from([body]).pipe(bytes.meter()) : body));
    return { cap, sha256, changed, enc: how === 'xz' ? ctx.xz.id : 'raw', how };
  };
  return changed ? send() : once(ctx, sha256, data.length, send);
}

async function xzBuffer(data: Buffer, settings: UploadContext['xz']['settings']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([data]).pipe(createXz(settings))) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The file's first `limit` bytes, by explicit position (no shared file offset): each attempt of
 * an upload gets a fresh one and reads from the first byte. A failed read is a SourceError.
 */
function fileBytes(fh: FileHandle, shown: string, limit: number, onError: (e: unknown) => void): Readable {
  let pos = 0;
  return new Readable({
    highWaterMark: 1 << 20,
    read(size) {
      if (pos >= limit) {
        this.push(null);
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1 << 20), limit - pos));
      fh.read(buf, 0, buf.length, pos).then(
        ({ bytesRead }) => {
          pos += bytesRead;
          this.push(bytesRead ? buf.subarray(0, bytesRead) : null);
        },
        (e: unknown) => {
          const err = sourceError(shown, e);
          onError(err);
          this.destroy(err as Error);
        },
      );
    },
  });
}

/** The SHA-256 of an open file's first `limit` bytes (the pre-hash, the re-hash). */
export async function hashOpenFile(ctx: UploadContext, fh: FileHandle, shown: string, limit: number): Promise<Buffer> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(limit, 1)));
  for (let pos = 0; pos < limit; ) {
    const { bytesRead } = await fromSourceAsync(shown, () => fh.read(buf, 0, Math.min(buf.length, limit - pos), pos));
    if (!bytesRead) break;
    h.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
    ctx.stats.bytesRead += bytesRead;
  }
  return h.digest();
}

/** Whether the sample of an open file (its first and middle blocks) shrinks enough to compress. */
async function openFilePays(ctx: UploadContext, fh: FileHandle, shown: string, size: number): Promise<boolean> {
  if (ctx.xz.policy.minSaving === null) return true;
  // Block by block: the first that does not shrink ends the test (and the reading).
  for (const [at, len] of sampleBlocks(size)) {
    const buf = Buffer.allocUnsafe(len);
    const { bytesRead } = await fromSourceAsync(shown, () => fh.read(buf, 0, len, at));
    if (!samplePays([buf.subarray(0, bytesRead)], ctx.xz.policy.minSaving)) return false;
  }
  return true;
}

/**
 * Streams a file to `PUT /uri`: plaintext hashed (and counted) in one pass-through, then xz
 * (maybe) and the byte rate limit. Chunks of 1 MiB keep the per-chunk cost of each stage low.
 */
async function uploadFile(ctx: UploadContext, fh: FileHandle, shown: string, opened: Opened, compress: boolean): Promise<Omit<UploadedContents, 'enc' | 'how'>> {
  let hash = createHash('sha256');
  let read = 0;
  let sent = 0;
  let readError: unknown;
  const body = () => {
    // A retry reads the file again from its first byte: progress counts it once.
    ctx.stats.bytesDone -= read;
    hash = createHash('sha256');
    read = 0;
    sent = 0;
    const stages: NodeJS.ReadWriteStream[] = [
      new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          read += chunk.length;
          ctx.stats.bytesDone += chunk.length;
          cb(null, chunk);
        },
      }),
    ];
    if (compress) {
      stages.push(createXz(ctx.xz.settings));
      stages.push(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            sent += chunk.length;
            cb(null, chunk);
          },
        }),
      );
    }
    if (ctx.bytes) stages.push(ctx.bytes.meter());
    const source = fileBytes(fh, shown, opened.limit, (e) => (readError ??= e));
    return pipeline([source, ...stages], () => {}) as unknown as Readable;
  };
  let cap: string;
  try {
    cap = await ctx.client.putFile(body);
  } catch (e) {
    // The request failed because the file could not be read: that is the file's failure.
    throw readError ?? e;
  }
  const after = await fromSourceAsync(shown, () => fh.stat({ bigint: true }));
  if (!compress) sent = read;
  ctx.stats.bytesRead += read;
  ctx.stats.bytesSent += sent;
  if (compress) {
    ctx.stats.xzIn += read;
    ctx.stats.xzOut += sent;
  }
  const changed = opened.changed || read !== opened.limit || changedSince(opened, after);
  return { cap, sha256: hash.digest(), changed };
}

/**
 * A larger file: hashed first when the cache can look its contents up (a local read costs far
 * less than an upload), then a sample decides the encoding, then it is streamed up.
 */
async function uploadLarge(ctx: UploadContext, abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
  const { fh, opened } = await openSource(ctx, abs, shown, st);
  try {
    const size = opened.limit;
    let prehash: Buffer | undefined;
    // A file that is not what was stat'ed any more goes up as read, looked up by nothing.
    const lookUp = ctx.cache !== undefined && ctx.prehash && !opened.changed;
    // Same-size files of this run going up unhashed that may be its twins (same first block),
    // until none came in meanwhile: from the last look to acting on it, nothing awaits.
    const search = lookUp ? new TwinSearch(ctx, fh, shown, size) : undefined;
    for (let them = search?.unseen() ?? []; them.length; them = search!.unseen()) await search!.compare(them);
    const twins = search?.twins ?? [];
    if (lookUp && (twins.length || ctx.cache!.mayKnowSize(size))) {
      prehash = await hashOpenFile(ctx, fh, shown, size);
      const twin = await twinOf(prehash, twins);
      const hit = twin ? (countKnown(ctx, size), { cap: twin.cap, enc: twin.enc }) : known(ctx, prehash, choice, size);
      if (hit) {
        ctx.stats.bytesDone += size;
        const changed = changedSince(opened, await fromSourceAsync(shown, () => fh.stat({ bigint: true })));
        return { ...hit, sha256: prehash, changed, how: 'known' };
      }
    }
    const send = async (): Promise<UploadedContents> => {
      const compress = choice === 'contents' && (await openFilePays(ctx, fh, shown, size));
      const up = compress ? await ctx.encoders.run(() => uploadFile(ctx, fh, shown, opened, true)) : await uploadFile(ctx, fh, shown, opened, false);
      // Contents that differ from the pre-hash changed between the two reads.
      const changed = up.changed || (prehash !== undefined && !prehash.equals(up.sha256));
      return { ...up, changed, enc: compress ? ctx.xz.id : 'raw', how: compress ? 'xz' : rawBecause(choice) };
    };
    if (prehash) return await once(ctx, prehash, size, send);
    return lookUp ? await unhashedUpload(ctx, fh, size, send) : await send();
  } finally {
    await fh.close();
  }
}

/** Uploads the contents of the file `st` describes (its size chooses the way it is read). */
export async function upload(ctx: UploadContext, abs: Buffer, shown: string, st: EntryStat, choice: Choice): Promise<UploadedContents> {
  return st.size <= BigInt(SMALL_FILE) ? uploadSmall(ctx, abs, shown, st, choice) : uploadLarge(ctx, abs, shown, st, choice);
}

