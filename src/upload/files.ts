/**
 * Files and symlinks: ask the cache first; upload only what it does not know.
 *
 * A file whose size, mtime, inode and encoding match a cached row is reused when its ctime
 * matches too; when only the ctime moved (chmod, chown, ACLs — or contents changed with the
 * mtime put back), the file is hashed locally and reused if its contents are the same, so a
 * metadata-only change never costs an upload. A file that changed while it was read, or was
 * modified too recently to trust, is uploaded but not cached, with a warning.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { fileKey, symlinkKey } from '../cache/keys.js';
import { describeErrno, errnoCode } from '../errors.js';
import { log, logs } from '../log.js';
import { compressible } from '../scan/filters.js';
import { showPath } from '../scan/phase1.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import { TahoeError } from '../tahoe/errors.js';
import { createXz } from './encoder.js';
import { childName, edgeMetadata } from './meta.js';
import type { ChildResult, UploadContext } from './context.js';

const SLASH = Buffer.from('/');

export function absPath(ctx: UploadContext, rel: Buffer): Buffer {
  return rel.length ? Buffer.concat([ctx.root, SLASH, rel]) : ctx.root;
}

/** lstat for phase 2; undefined (after a warning and a count) when the entry cannot be used. */
export function statEntry(ctx: UploadContext, e: QueueEntry, want: 'file' | 'symlink' | 'dir'): BigIntStats | undefined {
  let st: BigIntStats | undefined;
  try {
    st = lstatSync(absPath(ctx, e.path), { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    ctx.stats.skipped.unreadable++;
    log.warn({ path: encodePath(e.path) }, `cannot read ${showPath(e.path)}: ${describeErrno(err)}; skipped`);
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

function result(e: QueueEntry, cap: string, type: ChildResult['type'], extras: Parameters<typeof edgeMetadata>[1]): ChildResult {
  const base = baseName(e.path);
  const { name, rawname } = childName(base);
  return { nameBytes: base, name, type, cap, metadata: edgeMetadata(e, { ...extras, rawname }) };
}

function relText(rel: Buffer): string {
  return `/${rel.toString('utf8')}`;
}

async function hashFile(ctx: UploadContext, abs: Buffer): Promise<Buffer> {
  const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const h = createHash('sha256');
    for await (const chunk of fh.createReadStream({ autoClose: false, start: 0 })) {
      h.update(chunk as Buffer);
      ctx.stats.bytesRead += (chunk as Buffer).length;
    }
    return h.digest();
  } finally {
    await fh.close();
  }
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

/** Reads a small file whole (checking it did not change while read) and uploads the buffer. */
async function uploadSmall(ctx: UploadContext, abs: Buffer, compress: boolean): Promise<Uploaded> {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  let data: Buffer;
  let changed: boolean;
  try {
    const before = fstatSync(fd, { bigint: true });
    data = Buffer.allocUnsafe(Number(before.size) + 1);
    let read = 0;
    for (let n; read < data.length && (n = readSync(fd, data, read, data.length - read, read)) > 0; ) read += n;
    const after = fstatSync(fd, { bigint: true });
    changed = BigInt(read) !== before.size || after.size !== before.size || after.mtimeNs !== before.mtimeNs;
    data = data.subarray(0, read);
  } finally {
    closeSync(fd);
  }
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
 * Streams a file to `PUT /uri`: plaintext hashed (and counted) in one pass-through, then xz
 * (maybe) and the byte rate limit. Chunks of 1 MiB keep the per-chunk cost of each stage low.
 */
async function uploadFile(ctx: UploadContext, fh: FileHandle, compress: boolean): Promise<Uploaded> {
  const before = await fh.stat({ bigint: true });
  let hash = createHash('sha256');
  let read = 0;
  let sent = 0;
  const body = () => {
    // A retry reads the file again: progress counts it once.
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
    const source = fh.createReadStream({ autoClose: false, start: 0, highWaterMark: 1 << 20 });
    return pipeline([source, ...stages], () => {}) as unknown as Readable;
  };
  const cap = await ctx.client.putFile(body);
  const after = await fh.stat({ bigint: true });
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

export async function handleFile(ctx: UploadContext, e: QueueEntry): Promise<ChildResult | null> {
  const st = statEntry(ctx, e, 'file');
  if (!st) return null;
  const abs = absPath(ctx, e.path);
  const compress = compressible(ctx.xz.policy, relText(e.path), Number(st.size));
  const key = fileKey({ path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino, encoding: compress ? ctx.xz.id : 'none' });
  const xattrs = ctx.readXattrs?.(abs, st);
  const extras = { mtimeNs: st.mtimeNs, enc: compress ? ('xz' as const) : undefined, xattrs };
  const cache = ctx.cache;
  const row = cache?.checkFile(key);
  if (cache && row && row.ctimeNs === String(st.ctimeNs)) {
    cache.use(key);
    ctx.stats.filesReused++;
    ctx.stats.bytesDone += Number(st.size);
    if (logs('noise')) log.noise({ path: encodePath(e.path) }, 'unchanged');
    return result(e, row.cap, 'filenode', extras);
  }
  try {
    if (cache && row?.sha256) {
      const sha = await ctx.limiter.run(() => hashFile(ctx, abs));
      if (sha.equals(row.sha256)) {
        cache.useFile(key, st.ctimeNs);
        ctx.stats.filesReused++;
        ctx.stats.bytesDone += Number(st.size);
        if (logs('noise')) log.noise({ path: encodePath(e.path) }, 'metadata changed, contents the same');
        return result(e, row.cap, 'filenode', extras);
      }
    }
    if (ctx.stopping()) return null;
    const readStart = BigInt(Date.now()) * 1_000_000n;
    const up = await ctx.limiter.run(async () => {
      if (st.size <= BigInt(SMALL_FILE)) return uploadSmall(ctx, abs, compress);
      const fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        return await uploadFile(ctx, fh, compress);
      } finally {
        await fh.close();
      }
    });
    ctx.stats.filesUploaded++;
    if (up.changed) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${showPath(e.path)} changed while it was read; uploaded as read, not cached`);
    } else if (st.mtimeNs > readStart - ctx.trustNs) {
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${showPath(e.path)} was modified too recently to trust; uploaded, not cached`);
    } else cache?.remember(key, 'file', up.cap, { ctimeNs: st.ctimeNs, sha256: up.sha256 });
    if (logs('noise')) log.noise({ path: encodePath(e.path), compressed: compress }, 'uploaded');
    return result(e, up.cap, 'filenode', extras);
  } catch (err) {
    if (err instanceof TahoeError || !errnoCode(err)) throw err;
    // A local read failure of this one file: leave it out and go on.
    const code = errnoCode(err);
    if (code === 'ENOENT') ctx.stats.skipped.vanished++;
    else ctx.stats.skipped.unreadable++;
    log.warn({ path: encodePath(e.path) }, `cannot read ${showPath(e.path)}: ${describeErrno(err)}; skipped`);
    return null;
  }
}

export async function handleSymlink(ctx: UploadContext, e: QueueEntry): Promise<ChildResult | null> {
  const st = statEntry(ctx, e, 'symlink');
  if (!st) return null;
  const abs = absPath(ctx, e.path);
  let target: Buffer;
  try {
    target = readlinkSync(abs, { encoding: 'buffer' });
  } catch (err) {
    ctx.stats.skipped.unreadable++;
    log.warn({ path: encodePath(e.path) }, `cannot read the link ${showPath(e.path)}: ${describeErrno(err)}; skipped`);
    return null;
  }
  const key = symlinkKey(e.path, target);
  const extras = { mtimeNs: st.mtimeNs, xattrs: ctx.readXattrs?.(abs, st) };
  const cached = ctx.cache?.checkEntry(key, 'symlink');
  if (cached) {
    ctx.cache!.use(key);
    ctx.stats.symlinksReused++;
    return result(e, cached, 'filenode', extras);
  }
  if (ctx.stopping()) return null;
  const cap = await ctx.limiter.run(() => ctx.client.putFile(() => Readable.from([target])));
  ctx.stats.symlinksUploaded++;
  ctx.stats.bytesSent += target.length;
  ctx.cache?.remember(key, 'symlink', cap);
  return result(e, cap, 'filenode', extras);
}
