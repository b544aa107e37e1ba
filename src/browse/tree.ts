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

/** Yields the start directory's descendants (pre-order: a directory, then what is in it). */
export async function* walkBackup(client: TahoeClient, dircap: string, path: string[] = [], opts: { recursive?: boolean } = {}): AsyncGenerator<BackupNode> {
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
    if (opts.recursive !== false && child.type === 'dirnode' && child.ro_uri) yield* walkBackup(client, child.ro_uri, node.path, opts);
  }
}
