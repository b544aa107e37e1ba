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

/**
 * Yields the start directory's descendants (pre-order: a directory, then what is in it), with
 * an explicit stack: memory is the listings on the current path, and no depth reaches the
 * JavaScript stack's limit. A directory already on the path is reported and not entered.
 */
export async function* walkBackup(client: TahoeClient, dircap: string, path: string[] = [], opts: WalkOptions = {}): AsyncGenerator<BackupNode> {
  interface Frame {
    cap: string;
    path: string[];
    children: NonNullable<NodeInfo['children']>;
    names: string[];
    i: number;
  }
  const open = async (cap: string, at: string[]): Promise<Frame> => {
    const info: NodeInfo = await client.info(cap);
    const children = info.children ?? {};
    return { cap, path: at, children, names: Object.keys(children).sort(byNameBytes), i: 0 };
  };
  const stack = [await open(dircap, path)];
  /** The caps on the path: each at most once (a cap met again is not entered). */
  const onThePath = new Set([dircap]);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.names.length) {
      onThePath.delete(f.cap);
      stack.pop();
      continue;
    }
    const name = f.names[f.i++]!;
    const child = f.children[name]!;
    const node: BackupNode = { path: [...f.path, name], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} };
    yield node;
    if (opts.recursive === false || child.type !== 'dirnode' || !child.ro_uri) continue;
    if (onThePath.has(child.ro_uri)) opts.onCycle?.(node.path);
    else {
      stack.push(await open(child.ro_uri, node.path));
      onThePath.add(child.ro_uri);
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
