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
import { compressible } from '../scan/filters.js';
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

interface Uploaded {
  cap: string;
  sha256: Buffer;
  changed: boolean;
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

/** Uploads a small file's bytes (compressed first if asked). */
async function uploadSmall(ctx: UploadContext, abs: Buffer, shown: string, compress: boolean): Promise<Uploaded> {
  const { data, changed } = readSmall(ctx, abs, shown);
  const sha256 = createHash('sha256').update(data).digest();
  ctx.stats.bytesRead += data.length;
  ctx.stats.bytesDone += data.length;
  let body = data;
  if (compress) {
    const chunks: Buffer[] = [];
    for await (const c of Readable.from([data]).pipe(createXz(ctx.xz.settings))) chunks.push(c as Buffer);
    body = Buffer.concat(chunks);
    ctx.stats.xzIn += data.length;
    ctx.stats.xzOut += body.length;
  }
  ctx.stats.bytesSent += body.length;
  const bytes = ctx.bytes;
  const cap = await ctx.client.putFile(() => (bytes ? Readable.from([body]).pipe(bytes.meter()) : body));
  return { cap, sha256, changed };
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

/**
 * Streams a file to `PUT /uri`: plaintext hashed (and counted) in one pass-through, then xz
 * (maybe) and the byte rate limit. Chunks of 1 MiB keep the per-chunk cost of each stage low.
 */
async function uploadFile(ctx: UploadContext, fh: FileHandle, shown: string, compress: boolean): Promise<Uploaded> {
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

async function upload(ctx: UploadContext, abs: Buffer, shown: string, size: bigint, compress: boolean): Promise<Uploaded> {
  if (size <= BigInt(SMALL_FILE)) return uploadSmall(ctx, abs, shown, compress);
  const fh = await fromSourceAsync(shown, () => open(abs, constants.O_RDONLY | constants.O_NOFOLLOW));
  try {
    assertBeneath(ctx, fh.fd, shown);
    return await uploadFile(ctx, fh, shown, compress);
  } finally {
    await fh.close();
  }
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
  const compress = compressible(ctx.xz.policy, relText(e.path), Number(st.size));
  const key = fileKey({ path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino, encoding: compress ? ctx.xz.id : 'none' });
  const xattrs = ctx.readXattrs?.(abs, st);
  const extras = { mtimeNs: st.mtimeNs, enc: compress ? ('xz' as const) : undefined, xattrs, hardlink };
  const cache = ctx.cache;
  const decision = cache ? cache.fileDecision(key, st.ctimeNs) : ({ action: 'upload' } as const);
  const reused = (why: string): Child => {
    ctx.stats.filesReused++;
    ctx.stats.bytesDone += Number(st.size);
    if (logs('noise')) log.noise({ path: encodePath(e.path) }, why);
    return result(e, (decision as { cap: string }).cap, extras);
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
    const up = await upload(ctx, abs, shown, st.size, compress);
    ctx.stats.filesUploaded++;
    if (up.changed) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} changed while it was read; uploaded as read, not cached`);
    } else if (st.mtimeNs > readStart + FUTURE_NS) {
      // An mtime in the future says nothing about recent writes: a later write sets it to now,
      // which changes the key. Cached; the run counts them and warns once.
      ctx.stats.futureMtimes++;
      cache?.didUpload(key, 'file', up.cap, { ctimeNs: st.ctimeNs, sha256: up.sha256 });
    } else if (st.mtimeNs > readStart - ctx.trustNs) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} was modified too recently to trust; uploaded, not cached`);
    } else cache?.didUpload(key, 'file', up.cap, { ctimeNs: st.ctimeNs, sha256: up.sha256 });
    if (logs('noise')) log.noise({ path: encodePath(e.path), compressed: compress }, 'uploaded');
    return result(e, up.cap, extras);
  } catch (err) {
    if (err instanceof SourceError) return skip(ctx, e, err);
    throw err;
  }
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
