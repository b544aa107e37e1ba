/**
 * The file stage: files and symlinks. Each asks the cache first and uploads only what it does
 * not know.
 *
 * The cache decides (EntryCache.fileDecision): reuse the cap; re-hash locally when only the
 * ctime moved (chmod, chown, ACLs — or contents changed with the mtime put back) and reuse the
 * cap if the contents are the same; or upload. A file that changed while it was read, or was
 * modified too recently to trust, is uploaded but not cached, with a warning.
 *
 * Errors are typed where they happen: a failed read of the entry itself is a SourceError (the
 * entry is skipped and counted, exit 3); the client's TahoeError and the cache's CacheError
 * end the run. Every upload attempt reads the file again from its first byte.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { fileKey, symlinkKey } from '../cache/keys.js';
import { childName, type Child } from '../core/entry.js';
import { createXz } from '../core/xz.js';
import { fromSource, fromSourceAsync, sourceError, SourceError } from '../errors.js';
import { log, logs } from '../log.js';
import { compressionChoice, keptXzBefore, sampleBlocks, sampleOf, samplePays, type Choice } from '../core/compression.js';
import type { StoredAs } from '../cache/db.js';
import { showPath } from '../scan/phase1.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { UploadContext } from './context.js';
import { edgeMetadata } from './meta.js';

const SLASH = Buffer.from('/');

/** An mtime this far ahead of the clock is "in the future", not "modified just now". */
const FUTURE_NS = 60_000_000_000n;

export function absPath(ctx: UploadContext, rel: Buffer): Buffer {
  return rel.length ? Buffer.concat([ctx.root, SLASH, rel]) : ctx.root;
}

/** lstat for phase 2; undefined (after a warning and a count) when the entry cannot be used. */
export function statEntry(ctx: UploadContext, e: QueueEntry, want: 'file' | 'symlink' | 'dir'): BigIntStats | undefined {
  let st: BigIntStats | undefined;
  try {
    st = fromSource(showPath(e.path), () => lstatSync(absPath(ctx, e.path), { bigint: true, throwIfNoEntry: false }));
  } catch (err) {
    if (!(err instanceof SourceError)) throw err;
    skip(ctx, e, err);
    return undefined;
  }
  if (!st) {
    ctx.stats.skipped.vanished++;
    log.warn({ path: encodePath(e.path) }, `${showPath(e.path)} vanished since the queue was built; skipped`);
    return undefined;
  }
  const is = want === 'file' ? st.isFile() : want === 'symlink' ? st.isSymbolicLink() : st.isDirectory();
  if (!is) {
    ctx.stats.skipped.changedType++;
    log.warn({ path: encodePath(e.path) }, `${showPath(e.path)} is no longer a ${want === 'dir' ? 'directory' : want}; skipped (rebuild the queue)`);
    return undefined;
  }
  return st;
}

/**
 * What an open file descriptor really is, asked of the kernel (/proc/self/fd): the file read
 * must lie beneath the source. A directory of the source swapped for a symlink between the
 * phases would otherwise have phase 2 read a file from anywhere (O_NOFOLLOW guards only the
 * last component). Without /proc the check is skipped.
 */
function assertBeneath(ctx: UploadContext, fd: number, shown: string): void {
  let real: Buffer;
  try {
    real = readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
  } catch {
    return;
  }
  const root = ctx.root;
  if (real.length > root.length && real[root.length] === 0x2f && real.subarray(0, root.length).equals(root)) return;
  throw new SourceError(shown, 'ENOTBENEATH', Object.assign(new Error('not beneath the source'), { code: 'ENOTBENEATH' }));
}

/** Leaves an entry whose source could not be read out of the backup, counted and named. */
function skip(ctx: UploadContext, e: QueueEntry, err: SourceError): null {
  if (err.errno === 'ENOENT') ctx.stats.skipped.vanished++;
  else ctx.stats.skipped.unreadable++;
  log.warn({ path: encodePath(e.path) }, `${err.message}; skipped`);
  return null;
}

function result(e: QueueEntry, cap: string, extras: Parameters<typeof edgeMetadata>[1]): Child {
  const { name, rawname } = childName(baseName(e.path));
  return { name, type: 'filenode', cap, metadata: edgeMetadata(e, { ...extras, rawname }) };
}

function relText(rel: Buffer): string {
  return `/${rel.toString('utf8')}`;
}

async function hashFile(ctx: UploadContext, abs: Buffer, shown: string): Promise<Buffer> {
  return fromSourceAsync(shown, async () => {
    const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      assertBeneath(ctx, fh.fd, shown);
      const h = createHash('sha256');
      for await (const chunk of fh.createReadStream({ autoClose: false, start: 0 })) {
        h.update(chunk as Buffer);
        ctx.stats.bytesRead += (chunk as Buffer).length;
      }
      return h.digest();
    } finally {
      await fh.close();
    }
  });
}

/** How an uploaded (or found) file's contents were stored, for the summary. */
export type Stored = 'xz' | 'raw-by-name' | 'raw-by-size' | 'raw-by-content' | 'raw' | 'known';

export interface UploadedContents {
  cap: string;
  sha256: Buffer;
  changed: boolean;
  /** 'raw' or the xz encoding id, as the cache records it. */
  enc: StoredAs;
  how: Stored;
}

/**
 * Files up to this size are read in one go and sent with a known length: a couple of stream
 * chunks anyway, and a few synchronous calls cost far less than a stream pipeline and thread
 * pool round trips per file. Memory stays bounded: concurrency × SMALL_FILE.
 */
export const SMALL_FILE = 256 * 1024;

/** Reads a small file whole, noting whether it changed while read. */
function readSmall(ctx: UploadContext, abs: Buffer, shown: string): { data: Buffer; changed: boolean } {
  return fromSource(shown, () => {
    const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      assertBeneath(ctx, fd, shown);
      const before = fstatSync(fd, { bigint: true });
      const data = Buffer.allocUnsafe(Number(before.size) + 1);
      let read = 0;
      for (let n; read < data.length && (n = readSync(fd, data, read, data.length - read, read)) > 0; ) read += n;
      const after = fstatSync(fd, { bigint: true });
      const changed = BigInt(read) !== before.size || after.size !== before.size || after.mtimeNs !== before.mtimeNs;
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
  if (hit) {
    ctx.stats.filesDeduplicated++;
    ctx.stats.bytesDeduplicated += size;
  }
  return hit;
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
      ctx.stats.filesDeduplicated++;
      ctx.stats.bytesDeduplicated += size;
      return { ...done, how: 'known' };
    }
    return send();
  }
  const p = send();
  ctx.uploading.set(id, p);
  try {
    return await p;
  } finally {
    ctx.uploading.delete(id);
  }
}

/** Uploads a small file's bytes: found by contents, compressed when that pays, or raw. */
async function uploadSmall(ctx: UploadContext, abs: Buffer, shown: string, choice: Choice): Promise<UploadedContents> {
  const { data, changed } = readSmall(ctx, abs, shown);
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
 * The file's bytes from `start`, by explicit position (no shared file offset): each attempt of
 * an upload gets a fresh one and reads from the first byte. A failed read is a SourceError.
 */
function fileBytes(fh: FileHandle, shown: string, onError: (e: unknown) => void): Readable {
  let pos = 0;
  return new Readable({
    highWaterMark: 1 << 20,
    read(size) {
      const buf = Buffer.allocUnsafe(Math.max(size, 1 << 20));
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

/** The SHA-256 of an open file's contents, read from the first byte (the pre-hash). */
async function hashOpenFile(ctx: UploadContext, fh: FileHandle, shown: string): Promise<Buffer> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let pos = 0; ; ) {
    const { bytesRead } = await fromSourceAsync(shown, () => fh.read(buf, 0, buf.length, pos));
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
async function uploadFile(ctx: UploadContext, fh: FileHandle, shown: string, compress: boolean): Promise<Omit<UploadedContents, 'enc' | 'how'>> {
  const before = await fromSourceAsync(shown, () => fh.stat({ bigint: true }));
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
    const source = fileBytes(fh, shown, (e) => (readError ??= e));
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
  const changed = after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(read) !== before.size;
  return { cap, sha256: hash.digest(), changed };
}

/**
 * A larger file: hashed first when the cache can look its contents up (a local read costs far
 * less than an upload), then a sample decides the encoding, then it is streamed up.
 */
async function uploadLarge(ctx: UploadContext, abs: Buffer, shown: string, size: number, choice: Choice): Promise<UploadedContents> {
  const fh = await fromSourceAsync(shown, () => open(abs, constants.O_RDONLY | constants.O_NOFOLLOW));
  try {
    assertBeneath(ctx, fh.fd, shown);
    let prehash: Buffer | undefined;
    if (ctx.cache && ctx.prehash) {
      prehash = await hashOpenFile(ctx, fh, shown);
      const hit = known(ctx, prehash, choice, size);
      if (hit) {
        ctx.stats.bytesDone += size;
        return { ...hit, sha256: prehash, changed: false, how: 'known' };
      }
    }
    const send = async (): Promise<UploadedContents> => {
      const compress = choice === 'contents' && (await openFilePays(ctx, fh, shown, size));
      const up = compress ? await ctx.encoders.run(() => uploadFile(ctx, fh, shown, true)) : await uploadFile(ctx, fh, shown, false);
      // Contents that differ from the pre-hash changed between the two reads.
      const changed = up.changed || (prehash !== undefined && !prehash.equals(up.sha256));
      return { ...up, changed, enc: compress ? ctx.xz.id : 'raw', how: compress ? 'xz' : rawBecause(choice) };
    };
    return prehash ? await once(ctx, prehash, size, send) : await send();
  } finally {
    await fh.close();
  }
}

async function upload(ctx: UploadContext, abs: Buffer, shown: string, size: bigint, choice: Choice): Promise<UploadedContents> {
  return size <= BigInt(SMALL_FILE) ? uploadSmall(ctx, abs, shown, choice) : uploadLarge(ctx, abs, shown, Number(size), choice);
}

/**
 * A file: reused, re-hashed and reused, or uploaded. Runs as one job of the file stage. A file
 * with more than one link is marked with the first link's path; the later links of the group
 * take the first one's cap (its contents go up once).
 */
export async function handleFile(ctx: UploadContext, e: QueueEntry): Promise<Child | null> {
  const st = statEntry(ctx, e, 'file');
  if (!st) return null;
  if (st.nlink > 1n) {
    const id = `${st.dev}:${st.ino}`;
    const first = ctx.hardlinks.get(id);
    if (first) {
      const done = await first.done.catch(() => null);
      if (done) {
        ctx.stats.filesReused++;
        ctx.stats.bytesDone += Number(st.size);
        const extras = { mtimeNs: st.mtimeNs, enc: done.metadata.enc === 'xz' ? ('xz' as const) : undefined, xattrs: ctx.readXattrs?.(absPath(ctx, e.path), st), hardlink: first.path };
        return result(e, done.cap, extras);
      }
    } else {
      const done = fileJob(ctx, e, st, encodePath(e.path));
      ctx.hardlinks.set(id, { path: encodePath(e.path), done });
      return done;
    }
  }
  return fileJob(ctx, e, st);
}

async function fileJob(ctx: UploadContext, e: QueueEntry, st: BigIntStats, hardlink?: string): Promise<Child | null> {
  const abs = absPath(ctx, e.path);
  const shown = showPath(e.path);
  const rel = relText(e.path);
  const policy = ctx.xz.policy;
  const choice = compressionChoice(policy, rel, Number(st.size));
  // The key names the xz settings only for files whose contents decide (as before
  // compressed_names existed, so rows of earlier runs still match).
  const identity = { path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino };
  let keyEnc = choice === 'contents' ? ctx.xz.id : 'none';
  let key = fileKey({ ...identity, encoding: keyEnc });
  const xattrs = ctx.readXattrs?.(abs, st);
  const cache = ctx.cache;
  let decision = cache ? cache.fileDecision(key, st.ctimeNs) : ({ action: 'upload' } as const);
  if (decision.action === 'upload' && cache && keptXzBefore(policy, rel, Number(st.size))) {
    // Stored (as xz) by a run from before compressed_names: that row still holds.
    const legacy = fileKey({ ...identity, encoding: ctx.xz.id });
    const d = cache.fileDecision(legacy, st.ctimeNs);
    if (d.action !== 'upload') {
      decision = d;
      key = legacy;
      keyEnc = ctx.xz.id;
    }
  }
  const edge = (enc: StoredAs | undefined) => ({ mtimeNs: st.mtimeNs, enc: (enc ?? (keyEnc === 'none' ? 'raw' : keyEnc)).startsWith('xz') ? ('xz' as const) : undefined, xattrs, hardlink });
  const reused = (why: string): Child => {
    const d = decision as { cap: string; enc?: StoredAs };
    ctx.stats.filesReused++;
    ctx.stats.bytesDone += Number(st.size);
    if (logs('noise')) log.noise({ path: encodePath(e.path) }, why);
    return result(e, d.cap, edge(d.enc));
  };
  if (decision.action === 'reuse') {
    cache!.didReuse(key);
    return reused('unchanged');
  }
  try {
    if (decision.action === 'rehash' && (await hashFile(ctx, abs, shown)).equals(decision.sha256)) {
      cache!.didReuse(key, st.ctimeNs);
      return reused('metadata changed, contents the same');
    }
    const readStart = BigInt(Date.now()) * 1_000_000n;
    const up = await upload(ctx, abs, shown, st.size, choice);
    countStored(ctx, up.how);
    const row = { ctimeNs: st.ctimeNs, sha256: up.sha256, enc: up.enc };
    if (up.changed) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} changed while it was read; uploaded as read, not cached`);
    } else if (st.mtimeNs > readStart + FUTURE_NS) {
      // An mtime in the future says nothing about recent writes: a later write sets it to now,
      // which changes the key. Cached; the run counts them and warns once.
      ctx.stats.futureMtimes++;
      cache?.didUpload(key, 'file', up.cap, row);
    } else if (st.mtimeNs > readStart - ctx.trustNs) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} was modified too recently to trust; uploaded, not cached`);
    } else cache?.didUpload(key, 'file', up.cap, row);
    if (logs('noise')) log.noise({ path: encodePath(e.path), stored: up.how }, up.how === 'known' ? 'contents already stored' : 'uploaded');
    return result(e, up.cap, edge(up.enc));
  } catch (err) {
    if (err instanceof SourceError) return skip(ctx, e, err);
    throw err;
  }
}

/** Counts an uploaded file by how it was stored (a file found by its contents is not an upload). */
function countStored(ctx: UploadContext, how: Stored): void {
  const c = ctx.stats.stored;
  if (how === 'known') return;
  ctx.stats.filesUploaded++;
  if (how === 'xz') c.xz++;
  else if (how === 'raw-by-name') c.rawByName++;
  else if (how === 'raw-by-size') c.rawBySize++;
  else if (how === 'raw-by-content') c.rawByContent++;
  else c.raw++;
}

/** A symlink: its target is uploaded as a small file. Runs as one job of the file stage. */
export async function handleSymlink(ctx: UploadContext, e: QueueEntry): Promise<Child | null> {
  const st = statEntry(ctx, e, 'symlink');
  if (!st) return null;
  const abs = absPath(ctx, e.path);
  let target: Buffer;
  try {
    target = fromSource(showPath(e.path), () => readlinkSync(abs, { encoding: 'buffer' }));
  } catch (err) {
    if (err instanceof SourceError) return skip(ctx, e, err);
    throw err;
  }
  const key = symlinkKey(e.path, target);
  const extras = { mtimeNs: st.mtimeNs, xattrs: ctx.readXattrs?.(abs, st) };
  const cached = ctx.cache?.knownCap(key, 'symlink');
  if (cached) {
    ctx.cache!.didReuse(key);
    ctx.stats.symlinksReused++;
    return result(e, cached, extras);
  }
  const cap = await ctx.client.putFile(() => Readable.from([target]));
  ctx.stats.symlinksUploaded++;
  ctx.stats.bytesSent += target.length;
  ctx.cache?.didUpload(key, 'symlink', cap);
  return result(e, cap, extras);
}
