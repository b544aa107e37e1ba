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
import { readlinkSync } from 'node:fs';
import { Readable } from 'node:stream';
import { fileKey, symlinkKey } from '../cache/keys.js';
import { childName, type Child } from '../core/entry.js';
import { fromSource, sourceError, SourceError } from '../errors.js';
import { log, logs } from '../log.js';
import { compressionChoice, keptXzBefore, type Choice } from '../core/compression.js';
import type { FileDecision, StoredAs } from '../cache/db.js';
import { showPath } from '../scan/phase1.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { UploadContext } from './context.js';
import { edgeMetadata } from './meta.js';
import type { EntryStat } from './source-stat.js';
import { openSource } from './open-source.js';
import { doneUploading, hashOpenFile, upload, type Stored } from './upload.js';

const SLASH = Buffer.from('/');

/** An mtime this far ahead of the clock is "in the future", not "modified just now". */
const FUTURE_NS = 60_000_000_000n;

export function absPath(ctx: UploadContext, rel: Buffer): Buffer {
  return rel.length ? Buffer.concat([ctx.root, SLASH, rel]) : ctx.root;
}

/**
 * Phase 2's lstat of a queue entry (the queue reader's, before the entry's job is submitted);
 * undefined (after a warning and a count) when the entry cannot be used.
 */
export function statEntry(ctx: UploadContext, e: QueueEntry, want: 'file' | 'symlink' | 'dir'): EntryStat | undefined {
  let st: EntryStat | undefined;
  try {
    st = ctx.source.lstat(e.path);
  } catch (err) {
    const typed = sourceError(showPath(e.path), err);
    if (!(typed instanceof SourceError)) throw typed;
    skip(ctx, e, typed);
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
function skip(ctx: UploadContext, e: QueueEntry, err: SourceError): null {
  if (err.errno === 'ENOTREG') ctx.stats.skipped.changedType++;
  else if (err.errno === 'ENOENT' || err.errno === 'EREPLACED') ctx.stats.skipped.vanished++;
  else ctx.stats.skipped.unreadable++;
  log.warn({ path: encodePath(e.path) }, `${err.message}; skipped`);
  return null;
}

/** A file's or symlink's child; `row`: the cache row that now holds it as it is, if any. */
function result(e: QueueEntry, cap: string, extras: Parameters<typeof edgeMetadata>[1], row?: Buffer): Child {
  const { name, rawname } = childName(baseName(e.path));
  const child: Child = { name, type: 'filenode', cap, metadata: edgeMetadata(e, { ...extras, rawname }) };
  if (row) child.row = row;
  return child;
}

function relText(rel: Buffer): string {
  return `/${rel.toString('utf8')}`;
}

/**
 * The SHA-256 of a file's contents (the re-hash of a file whose ctime alone moved); undefined
 * when the file opened is not the one stat'ed any more (then it is uploaded as it is read).
 */
async function hashFile(ctx: UploadContext, abs: Buffer, shown: string, st: EntryStat): Promise<Buffer | undefined> {
  const { fh, opened } = await openSource(ctx, abs, shown, st);
  try {
    if (opened.changed) return undefined;
    return await hashOpenFile(ctx, fh, shown, opened.limit);
  } finally {
    await fh.close();
  }
}

/**
 * A file: reused, re-hashed and reused, or uploaded. Runs as one job of the file stage. A file
 * with more than one link is marked with the first link's path; the later links of the group
 * take the first one's cap (its contents go up once).
 */
export async function handleFile(ctx: UploadContext, e: QueueEntry, st: EntryStat): Promise<Child | null> {
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

/** The rest of a file's work once the cache has answered: a job of the file stage. */
export type FileWork = () => Promise<Child | null>;

/**
 * The queue reader's question, before any job: an unchanged file (one link) is answered at
 * once from the cache — no job, no promise chain — and anything else returns its work. A file
 * with more than one link waits for its group's first, so it is always a job (undefined).
 */
export function fileAtOnce(ctx: UploadContext, e: QueueEntry, st: EntryStat): Child | FileWork | undefined {
  return st.nlink > 1n ? undefined : fileNow(ctx, e, st);
}

async function fileJob(ctx: UploadContext, e: QueueEntry, st: EntryStat, hardlink?: string): Promise<Child | null> {
  const r = fileNow(ctx, e, st, hardlink);
  return typeof r === 'function' ? r() : r;
}

/** What can be done without waiting (the cache's answer; a reuse), and the rest as a function. */
function fileNow(ctx: UploadContext, e: QueueEntry, st: EntryStat, hardlink?: string): Child | FileWork {
  const rel = relText(e.path);
  const policy = ctx.xz.policy;
  const choice = compressionChoice(policy, rel, Number(st.size));
  // The key names the xz settings only for files whose contents decide (as before
  // compressed_names existed, so rows of earlier runs still match).
  const identity = { path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino };
  let keyEnc = choice === 'contents' ? ctx.xz.id : 'none';
  let key = fileKey({ ...identity, encoding: keyEnc });
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
  // A reused row knows the file's user xattrs (its ctime is the same, so are they); otherwise
  // they are read, and remembered when read whole.
  const remembered = decision.action === 'reuse' && ctx.readXattrs ? fromRow(decision.xattrs) : null;
  const xattrs = remembered !== null ? remembered : ctx.readXattrs?.(absPath(ctx, e.path), st);
  const learnt = ctx.readXattrs && remembered === null ? toRow(xattrs) : undefined;
  // The edge is all there is to say about the file (no link group, xattrs read whole): only
  // then may a cache row stand for it in its directory's listing (Child.row).
  const whole = hardlink === undefined && xattrs !== null;
  const edge = (enc: StoredAs | undefined) => ({ mtimeNs: st.mtimeNs, enc: (enc ?? (keyEnc === 'none' ? 'raw' : keyEnc)).startsWith('xz') ? ('xz' as const) : undefined, xattrs, hardlink });
  const reused = (why: string): Child => {
    const d = decision as { cap: string; enc?: StoredAs };
    ctx.stats.filesReused++;
    ctx.stats.bytesDone += Number(st.size);
    if (logs('noise')) log.noise({ path: encodePath(e.path) }, why);
    return result(e, d.cap, edge(d.enc), whole ? key : undefined);
  };
  if (decision.action === 'reuse') {
    cache!.didReuse(key, learnt === undefined ? undefined : { xattrs: learnt });
    return reused('unchanged');
  }
  return () => uploadFile(ctx, e, st, { choice, key, decision, learnt, reused, edge, whole });
}

interface FilePlan {
  /** The edge is all there is to say: no link group, xattrs read (for `Child.row`). */
  whole: boolean;
  choice: Choice;
  key: Buffer;
  decision: FileDecision;
  learnt: string | undefined;
  reused: (why: string) => Child;
  edge: (enc: StoredAs | undefined) => Parameters<typeof edgeMetadata>[1];
}

/** A file the cache does not know as it is: re-hashed (only the ctime moved) or uploaded. */
async function uploadFile(ctx: UploadContext, e: QueueEntry, st: EntryStat, plan: FilePlan): Promise<Child | null> {
  const { choice, key, decision, learnt, reused, edge } = plan;
  const abs = absPath(ctx, e.path);
  const shown = showPath(e.path);
  const cache = ctx.cache;
  try {
    if (decision.action === 'rehash' && (await hashFile(ctx, abs, shown, st))?.equals(decision.sha256)) {
      cache!.didReuse(key, { ctimeNs: st.ctimeNs, xattrs: learnt });
      return reused('metadata changed, contents the same');
    }
    const readStart = BigInt(Date.now()) * 1_000_000n;
    const up = await upload(ctx, abs, shown, st, choice);
    countStored(ctx, up.how);
    const row = { ctimeNs: st.ctimeNs, sha256: up.sha256, enc: up.enc, xattrs: learnt, size: Number(st.size) };
    // The row key when the file is cached as it is now (not for a member of a link group, whose
    // edge depends on another entry, nor when its xattrs could not be read).
    let cached: Buffer | undefined = cache && plan.whole ? key : undefined;
    if (up.changed) {
      cached = undefined;
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} changed while it was read; uploaded as read, not cached`);
    } else if (st.mtimeNs > readStart + FUTURE_NS) {
      // An mtime in the future says nothing about recent writes: a later write sets it to now,
      // which changes the key. Cached; the run counts them and warns once.
      ctx.stats.futureMtimes++;
      cache?.didUpload(key, 'file', up.cap, row);
    } else if (st.mtimeNs > readStart - ctx.trustNs) {
      cached = undefined;
      ctx.stats.notCached++;
      log.warn({ path: encodePath(e.path) }, `${shown} was modified too recently to trust; uploaded, not cached`);
    } else cache?.didUpload(key, 'file', up.cap, row);
    doneUploading(ctx, up);
    if (logs('noise')) log.noise({ path: encodePath(e.path), stored: up.how }, up.how === 'known' ? 'contents already stored' : 'uploaded');
    return result(e, up.cap, edge(up.enc), cached);
  } catch (err) {
    if (err instanceof SourceError) return skip(ctx, e, err);
    throw err;
  }
}

/** User xattrs as a file row keeps them: JSON, '' for none; undefined when not to be kept. */
function toRow(xattrs: Record<string, string> | undefined | null): string | undefined {
  if (xattrs === null) return undefined;
  return xattrs ? JSON.stringify(xattrs) : '';
}

/** A row's user xattrs; null when the row does not know them (or holds something else). */
function fromRow(text: string | null): Record<string, string> | undefined | null {
  if (text === null) return null;
  if (text === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')) return v as Record<string, string>;
  } catch {
    // not JSON: read them again
  }
  return null;
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
export async function handleSymlink(ctx: UploadContext, e: QueueEntry, st: EntryStat): Promise<Child | null> {
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
    return result(e, cached, extras, extras.xattrs !== null ? key : undefined);
  }
  const cap = await ctx.client.putFile(() => Readable.from([target]));
  ctx.stats.symlinksUploaded++;
  ctx.stats.bytesSent += target.length;
  ctx.cache?.didUpload(key, 'symlink', cap);
  return result(e, cap, extras, ctx.cache && extras.xattrs !== null ? key : undefined);
}
