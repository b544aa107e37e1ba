/**
 * Walking a backup on the grid: `t=json` of each directory, depth first, names in byte order.
 * Used by `ls`, `diff` and the demo (restore, find, stats and dump walk in their own order).
 * Listings come from a client or a DirSource (listing.ts: the entry cache's store first).
 *
 * Two bounds hold whatever the backup's shape, however hostile: memory is linear in the depth
 * (a path is a link to its parent's, never a copy per level), and the entries reached through
 * a directory cap already walked — a tree that links one directory in many places, up to a
 * "DAG bomb" whose every level links the level below twice — are counted against a limit
 * (`RevisitBudget`), so such a walk stops with one line instead of producing 2^depth entries.
 */
import { createHash } from 'node:crypto';
import { AppError, EXIT, UsageError } from '../errors.js';
import type { TahoeClient } from '../tahoe/client.js';
import type { Metadata } from '../core/child.js';
import type { NodeInfo } from '../tahoe/types.js';
import { dirSource, type DirSource } from './listing.js';

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

/**
 * The directory caps on the path from a walk's start: a cap met again there is a cycle.
 * `again`: this directory, or one above it, was reached through a cap already walked.
 */
export interface Ancestors {
  cap: string;
  up?: Ancestors;
  again?: boolean;
}

export function onPath(a: Ancestors | undefined, cap: string): boolean {
  for (let x = a; x; x = x.up) if (x.cap === cap) return true;
  return false;
}

/** A path as a link to its parent's: each level adds one name, whatever the depth. */
export interface PathLink {
  name: string;
  up?: PathLink;
}

/** The names of `link`, from the walk's start (built when asked for: O(depth), then dropped). */
export function namesOf(link: PathLink | undefined): string[] {
  const out: string[] = [];
  for (let x = link; x; x = x.up) out.push(x.name);
  return out.reverse();
}

export function linkOf(names: string[]): PathLink | undefined {
  let link: PathLink | undefined;
  for (const name of names) link = { name, up: link };
  return link;
}

/** The documented default of `--max-revisited`: entries reached again through directories already walked. */
export const DEFAULT_MAX_REVISITED = 1_000_000;

/** The `--max-revisited` flag of restore, ls and diff (a plain object: the commands hand it to yargs). */
export const MAX_REVISITED_OPTION = {
  type: 'number',
  describe: `Stop when more than N entries are reached through directories the walk has already been through (a backup linking one directory in many places; default ${DEFAULT_MAX_REVISITED})`,
} as const;

/** A walk reached more entries through directories it had already walked than it may. */
export class RevisitLimitError extends AppError {
  constructor(limit: number, where: string) {
    super(
      `the backup links directories it already contains so often that more than ${limit} entries were reached again through them (at ${JSON.stringify(where || '/')}): ` +
        'a hostile or broken backup, or a very repetitive one; stopped (--max-revisited N raises the limit)',
      'revisits',
      EXIT.FAILURE,
    );
  }
}

/**
 * Counts what re-visits of directories produce. A backup may link one directory cap in many
 * places — every empty directory is the same `URI:DIR2-LIT:` cap, and identical subtrees (two
 * copies of a project) share one cap — so a re-visit alone is no fault; but each entry listed
 * in a directory reached through a cap walked before (or beneath one) counts, and past `limit`
 * the walk stops. Memory: one 16-byte digest per distinct directory.
 */
export class RevisitBudget {
  private readonly seen = new Set<string>();
  /** Entries reached through directories already walked, so far. */
  revisited = 0;

  constructor(readonly limit: number = DEFAULT_MAX_REVISITED) {}

  /** The budget `--max-revisited` asks for (absent: the default); anything but a whole number ≥ 0 is a usage error. */
  static fromFlag(value: unknown): RevisitBudget {
    if (value === undefined) return new RevisitBudget();
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new UsageError(`--max-revisited: give a whole number of entries (0 or more), not ${JSON.stringify(String(value))}`);
    return new RevisitBudget(value);
  }

  /** Entering directory `cap`: true when it was entered before in this walk. */
  enter(cap: string): boolean {
    const key = createHash('sha256').update(cap).digest().subarray(0, 16).toString('latin1');
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    return false;
  }

  /** `entries` more were reached again (the listing of a re-visited directory at `where`); throws past the limit. */
  count(entries: number, where: string): void {
    this.revisited += entries;
    if (this.revisited > this.limit) throw new RevisitLimitError(this.limit, where);
  }
}

export interface BackupWalkOptions {
  recursive?: boolean;
  /** A directory that contains itself (a mutable directory linked into itself): not entered again. */
  onCycle?: (path: string[]) => void;
  /** Counts the entries of directories walked again (default: a budget of DEFAULT_MAX_REVISITED). */
  revisits?: RevisitBudget;
}

/** A node of the walk: its path is built from the parent links when read. */
class WalkNode implements BackupNode {
  constructor(
    readonly at: PathLink,
    readonly type: BackupNode['type'],
    readonly cap: string | undefined,
    readonly size: number | undefined,
    readonly metadata: Metadata,
  ) {}

  get path(): string[] {
    return namesOf(this.at);
  }
}

/**
 * Yields the start directory's descendants (pre-order: a directory, then what is in it), with
 * an explicit stack: memory is the listings on the current path, and no depth reaches the
 * JavaScript stack's limit. A directory already on the path is reported and not entered; the
 * entries of a directory walked before count against the revisit budget.
 */
export async function* walkBackup(client: TahoeClient | DirSource, dircap: string, path: string[] = [], opts: BackupWalkOptions = {}): AsyncGenerator<BackupNode> {
  interface Frame {
    cap: string;
    at: PathLink | undefined;
    children: NonNullable<NodeInfo['children']>;
    names: string[];
    i: number;
    /** Reached through a directory cap walked before (here or above): its entries count. */
    again: boolean;
  }
  const budget = opts.revisits ?? new RevisitBudget();
  const dirs = dirSource(client);
  const open = async (cap: string, at: PathLink | undefined, again: boolean): Promise<Frame> => {
    const children = await dirs.children(cap);
    const names = Object.keys(children).sort(byNameBytes);
    if (again) budget.count(names.length, namesOf(at).join('/'));
    return { cap, at, children, names, i: 0, again };
  };
  budget.enter(dircap);
  const stack = [await open(dircap, linkOf(path), false)];
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
    const node = new WalkNode({ name, up: f.at }, child.type, child.ro_uri, child.size, child.metadata ?? {});
    yield node;
    if (opts.recursive === false || child.type !== 'dirnode' || !child.ro_uri) continue;
    if (onThePath.has(child.ro_uri)) opts.onCycle?.(node.path);
    else {
      // Re-visited: this directory was walked before, or one above it on the path was.
      const before = budget.enter(child.ro_uri);
      stack.push(await open(child.ro_uri, node.at, before || f.again));
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
