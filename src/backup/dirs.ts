/**
 * The directory stage: a directory becomes an immutable dirnode once all its children are
 * done — their names, caps and edge metadata go into `POST /uri?t=mkdir-immutable` — unless
 * the cache already knows a directory with exactly these children and this metadata.
 *
 * When every child is cached as it is (each has its `row`), the directory's listing key is
 * recorded too, standing for those rows: the next run with the same listing answers the whole
 * directory from that one row (the queue reader's shortcut, tree.ts), without its children.
 */
import { dirKey } from '../cache/keys.js';
import { childBytes, childName, type Child } from '../core/entry.js';
import { log, logs } from '../log.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { UploadContext } from './context.js';
import { absPath } from './files.js';
import type { EntryStat } from './source-stat.js';
import { edgeMetadata } from './meta.js';
import type { Metadata } from '../tahoe/types.js';

/** Sorted by name bytes; names made unique (only escaped non-UTF-8 names can collide). */
function arrange(results: (Child | null)[]): Child[] {
  const kids = results
    .filter((r): r is Child => r !== null)
    .map((c) => ({ c, bytes: childBytes(c) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ c }) => c);
  const used = new Set<string>();
  for (const k of kids) {
    while (used.has(k.name)) k.name += '~';
    used.add(k.name);
  }
  return kids;
}

/** The directory's name in its parent and its edge metadata; `whole`: its xattrs were read. */
function ownEdge(ctx: UploadContext, e: QueueEntry, st: EntryStat): { name: string; metadata: Metadata; whole: boolean } {
  const { name, rawname } = childName(baseName(e.path));
  const xattrs = ctx.readXattrs?.(absPath(ctx, e.path), st);
  return { name, metadata: edgeMetadata(e, { mtimeNs: st.mtimeNs, xattrs, rawname }), whole: xattrs !== null };
}

/**
 * A directory answered by its listing row (`listing` → `cap`): counted with the files and
 * symlinks it stands for, which are not looked at. No job, no request.
 */
export function listedDir(ctx: UploadContext, e: QueueEntry, st: EntryStat, listing: Buffer, cap: string, held: readonly { st: EntryStat; link: boolean }[]): Child {
  ctx.cache!.didReuse(listing);
  const s = ctx.stats;
  for (const h of held) {
    if (h.link) s.symlinksReused++;
    else {
      s.filesReused++;
      s.bytesDone += Number(h.st.size);
    }
  }
  s.dirsReused++;
  if (logs('noise')) log.noise({ path: encodePath(e.path), files: held.length }, 'directory unchanged (its listing)');
  const { name, metadata, whole } = ownEdge(ctx, e, st);
  const child: Child = { name, type: 'dirnode', cap, metadata };
  if (whole) child.row = listing;
  return child;
}

/**
 * Runs as one job of the directory stage: waits for the children, then reuses or creates.
 * `listing`: the directory's listing key, when it has one (see tree.ts).
 */
export async function handleDir(ctx: UploadContext, e: QueueEntry, st: EntryStat, children: Promise<Child | null>[], listing?: Buffer): Promise<Child | null> {
  const results = await Promise.all(children);
  const kids = arrange(results);
  const { name, metadata, whole } = ownEdge(ctx, e, st);
  const key = dirKey(metadata, kids);
  const cached = ctx.cache?.knownCap(key, 'dir');
  let cap: string;
  if (cached) {
    ctx.cache!.didReuse(key);
    ctx.stats.dirsReused++;
    cap = cached;
  } else {
    cap = await ctx.client.mkdirImmutable(kids);
    ctx.stats.dirsCreated++;
    ctx.cache?.didUpload(key, 'dir', cap);
  }
  if (logs('noise')) log.noise({ path: encodePath(e.path), children: kids.length, reused: Boolean(cached) }, 'directory');
  const child: Child = { name, type: 'dirnode', cap, metadata };
  if (listing && ctx.cache && kids.length === results.length && kids.every((k) => k.row)) {
    // Subdirectories' listing rows are raised by their own reuse; files' and symlinks' rows,
    // and this directory's row, only through this one.
    const refs = kids.filter((k) => k.type === 'filenode').map((k) => k.row!);
    refs.push(key);
    ctx.cache.didList(listing, cap, refs);
    // The parent's listing may stand for this edge only if it is complete.
    if (whole) child.row = listing;
  }
  return child;
}
