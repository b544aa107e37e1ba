/**
 * Directories become immutable dirnodes once all their children are done: the children's
 * names, caps and edge metadata go into `POST /uri?t=mkdir-immutable` — unless the cache
 * already knows a directory with exactly these children and this metadata.
 */
import { dirKey } from '../cache/keys.js';
import { log, logs } from '../log.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { ChildResult, UploadContext } from './context.js';
import { absPath, statEntry } from './files.js';
import { childName, edgeMetadata } from './meta.js';

/** Sorted by name bytes; names made unique (only escaped non-UTF-8 names can collide). */
function arrange(results: (ChildResult | null)[]): ChildResult[] {
  const kids = results.filter((r): r is ChildResult => r !== null).sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes));
  const used = new Set<string>();
  for (const k of kids) {
    while (used.has(k.name)) k.name += '~';
    used.add(k.name);
  }
  return kids;
}

export async function handleDir(ctx: UploadContext, e: QueueEntry, children: Promise<ChildResult | null>[]): Promise<ChildResult | null> {
  const kids = arrange(await Promise.all(children));
  const st = statEntry(ctx, e, 'dir');
  if (!st) return null;
  const base = baseName(e.path);
  const { name, rawname } = childName(base);
  const xattrs = ctx.readXattrs?.(absPath(ctx, e.path), st);
  const metadata = edgeMetadata(e, { mtimeNs: st.mtimeNs, xattrs, rawname });
  const key = dirKey(metadata, kids);
  const cached = ctx.cache?.checkEntry(key, 'dir');
  let cap: string;
  if (cached) {
    ctx.cache!.use(key);
    ctx.stats.dirsReused++;
    cap = cached;
  } else {
    if (ctx.stopping()) return null;
    cap = await ctx.limiter.run(() => ctx.client.mkdirImmutable(kids.map((k) => ({ name: k.name, type: k.type, cap: k.cap, metadata: k.metadata }))));
    ctx.stats.dirsCreated++;
    ctx.cache?.remember(key, 'dir', cap);
  }
  if (logs('noise')) log.noise({ path: encodePath(e.path), children: kids.length, reused: Boolean(cached) }, 'directory');
  return { nameBytes: base, name, type: 'dirnode', cap, metadata };
}
