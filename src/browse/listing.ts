/**
 * Where the walks get a directory's children: from the entry cache's store of listings when it
 * has the directory (cache/trees.ts: an immutable dircap's listing never changes), else from
 * the grid (`t=json`), storing what was read. Every walk of find, stats, dump and ls reads
 * through one of these, so whole subtrees that nights share are read from the grid once.
 */
import type { ListingRow, ListingStore } from '../cache/trees.js';
import { redact } from '../core/redact.js';
import type { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';
import type { NodeInfo, NodeType } from '../tahoe/types.js';

export type Children = Record<string, NodeInfo>;

/** What a walk needs of the grid: a directory's children (a null-prototype object: a child may be called "__proto__"). */
export interface DirSource {
  children(dircap: string): Promise<Children>;
}

/** A client, or a DirSource: what the walks accept. */
export function dirSource(from: TahoeClient | DirSource): DirSource {
  if ('children' in from && typeof from.children === 'function') return from;
  const client = from as TahoeClient;
  return { children: async (cap) => (await client.info(cap)).children ?? (Object.create(null) as Children) };
}

const TYPES = new Set<NodeType>(['filenode', 'dirnode', 'unknown']);

function toRows(children: Children): ListingRow[] {
  return Object.entries(children).map(([name, c]) => [name, c.type, c.ro_uri ?? null, c.size ?? null, c.metadata ?? null]);
}

function fromRows(rows: readonly ListingRow[]): Children {
  const out = Object.create(null) as Children;
  for (const [name, type, cap, size, metadata] of rows) {
    const node: NodeInfo = { type: TYPES.has(type as NodeType) ? (type as NodeType) : 'unknown' };
    if (cap !== null) node.ro_uri = cap;
    if (size !== null) node.size = size;
    if (metadata !== null) node.metadata = metadata;
    out[name] = node;
  }
  return out;
}

/** Listings from the store when it has them, else from the grid (and then stored). */
export class GridDirs implements DirSource {
  /** Listings asked of the grid by this source. */
  fetched = 0;

  constructor(
    readonly client: TahoeClient,
    private readonly store?: ListingStore,
  ) {}

  async children(dircap: string): Promise<Children> {
    const kept = this.store?.get(dircap);
    if (kept) return fromRows(kept);
    const info = await this.client.info(dircap);
    this.fetched++;
    // A gateway asked at the wrong URL answers ["unknown", {}]: that is no empty directory.
    if (info.type !== 'dirnode') throw new TahoeError(`GET ?t=json of ${redact(dircap)}`, 'protocol', `the gateway answered a ${info.type} node where the backup has a directory`);
    const children = info.children ?? (Object.create(null) as Children);
    // A mutable directory is never stored (the store refuses caps that are not immutable).
    this.store?.put(dircap, toRows(children));
    return children;
  }

  /** Listings answered by the store. */
  get hits(): number {
    return this.store?.counts.hits ?? 0;
  }
}
