/**
 * The directory stage: a directory becomes an immutable dirnode once all its children are
 * done — their names, caps and edge metadata go into `POST /uri?t=mkdir-immutable` — unless
 * the cache already knows a directory with exactly these children and this metadata.
 */
import { dirKey } from '../cache/keys.js';
import { childBytes, childName, type Child } from '../core/entry.js';
import { log, logs } from '../log.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { UploadContext } from './context.js';
import { absPath } from './files.js';
import type { EntryStat } from './source-stat.js';
import { edgeMetadata } from './meta.js';

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

/** Runs as one job of the directory stage: waits for the children, then reuses or creates. */
export async function handleDir(ctx: UploadContext, e: QueueEntry, st: EntryStat, children: Promise<Child | null>[]): Promise<Child | null> {
  const kids = arrange(await Promise.all(children));
  const { name, rawname } = childName(baseName(e.path));
  const xattrs = ctx.readXattrs?.(absPath(ctx, e.path), st);
  const metadata = edgeMetadata(e, { mtimeNs: st.mtimeNs, xattrs, rawname });
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
  return { name, type: 'dirnode', cap, metadata };
}
