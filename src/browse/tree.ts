/**
 * Walking a backup on the grid: `t=json` of each directory, depth first, names in byte order.
 * Used by `ls`, `restore`, `diff` and the demo.
 */
import type { TahoeClient } from '../tahoe/client.js';
import type { Metadata, NodeInfo } from '../tahoe/types.js';

export interface BackupNode {
  /** Names from the walk's start, as the directories list them. */
  path: string[];
  type: 'filenode' | 'dirnode' | 'unknown';
  cap?: string;
  size?: number;
  metadata: Metadata;
}

/** Byte order of UTF-8 names (the order the queue and the walk use). */
export function byNameBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The directory caps on the path from a walk's start: a cap met again there is a cycle. */
export interface Ancestors {
  cap: string;
  up?: Ancestors;
}

export function onPath(a: Ancestors | undefined, cap: string): boolean {
  for (let x = a; x; x = x.up) if (x.cap === cap) return true;
  return false;
}

export interface WalkOptions {
  recursive?: boolean;
  /** A directory that contains itself (a mutable directory linked into itself): not entered again. */
  onCycle?: (path: string[]) => void;
}

/** Yields the start directory's descendants (pre-order: a directory, then what is in it). */
export async function* walkBackup(client: TahoeClient, dircap: string, path: string[] = [], opts: WalkOptions = {}, up?: Ancestors): AsyncGenerator<BackupNode> {
  const here: Ancestors = { cap: dircap, up };
  const info: NodeInfo = await client.info(dircap);
  const names = Object.keys(info.children ?? {}).sort(byNameBytes);
  for (const name of names) {
    const child = info.children![name]!;
    const node: BackupNode = {
      path: [...path, name],
      type: child.type,
      cap: child.ro_uri,
      size: child.size,
      metadata: child.metadata ?? {},
    };
    yield node;
    if (opts.recursive !== false && child.type === 'dirnode' && child.ro_uri) {
      if (onPath(here, child.ro_uri)) opts.onCycle?.(node.path);
      else yield* walkBackup(client, child.ro_uri, node.path, opts, here);
    }
  }
}

/**
 * How big a tree is: its nodes (the directory itself included) and the stored size of its
 * files, from one `t=stream-manifest` (directory reads only). For progress totals; a stream
 * the gateway cuts short gives undefined rather than a wrong total.
 */
export async function treeTotals(client: TahoeClient, cap: string, seen = { objects: 0 }): Promise<{ objects: number; bytes: number } | undefined> {
  for await (const unit of client.manifest(cap)) {
    if (unit.type === 'error') return undefined;
    if (unit.type !== 'stats') {
      seen.objects++;
      continue;
    }
    const s = (unit as { stats: Record<string, unknown> }).stats;
    const size = (k: string) => (typeof s[k] === 'number' ? (s[k] as number) : 0);
    return { objects: seen.objects, bytes: size('size-immutable-files') + size('size-literal-files') };
  }
  return undefined;
}
