/**
 * A walk of a backup that hands out each entry interpreted (entry-info.ts: names checked, metadata
 * read) with its path as the bytes it has on disk: what `dump` writes into an archive. Depth
 * first, pre-order (a directory before what is in it), names in byte order; bounded like every
 * walk here (a path is a link to its parent's; a directory on its own path is not entered;
 * entries of directories reached again count against the revisit budget). Two children with
 * one name on disk (a rawname equal to a sibling's name) are a conflict: with `onConflict`, the
 * first is handed out and the others reported.
 */
import type { NodeInfo } from '../tahoe/types.js';
import { interpret, type EntryInfo } from './entry-info.js';
import type { DirSource } from './listing.js';
import { encodePath } from '../scan/queue-codec.js';
import { byNameBytes, namesOf, RevisitBudget, type PathLink } from './tree.js';

export interface WalkedEntry {
  /** The path from the walk's start, as bytes (`prefix` first, if given). */
  bytes: Buffer;
  /** Escaped as `ls` prints it (for messages). */
  shown: string;
  child: NodeInfo;
  entry: EntryInfo;
}

export interface EntryWalkOptions {
  revisits?: RevisitBudget;
  signal?: AbortSignal;
  /** The path the walk's start has (its entries' paths begin with it and a '/'). */
  prefix?: Buffer;
  onCycle?: (shown: string) => void;
  /** Called for each child whose name on disk another child of its directory has; without it, such children are handed out too (a listing shows what is there). */
  onConflict?: (shown: string) => void;
  /** false: only the start directory's own entries. */
  recursive?: boolean;
}

interface Frame {
  cap: string;
  at: PathLink | undefined;
  kids: { child: NodeInfo; entry: EntryInfo }[];
  i: number;
  again: boolean;
}

/** The path bytes of a link whose names are bytes held as latin1 strings. */
export function linkBytes(at: PathLink | undefined): Buffer {
  return Buffer.from(namesOf(at).join('/'), 'latin1');
}

export async function* walkEntries(dirs: DirSource, dircap: string, o: EntryWalkOptions = {}): AsyncGenerator<WalkedEntry> {
  const budget = o.revisits ?? new RevisitBudget();
  const start: PathLink | undefined = o.prefix?.length ? { name: o.prefix.toString('latin1') } : undefined;
  const open = async (cap: string, at: PathLink | undefined, again: boolean): Promise<Frame> => {
    const children = await dirs.children(cap);
    const shown = encodePath(linkBytes(at));
    const names = Object.keys(children).sort(byNameBytes);
    if (again) budget.count(names.length, shown);
    const taken = new Set<string>();
    const kids: Frame['kids'] = [];
    // Every name of the directory is checked before any entry of it is handed out.
    const all = names.map((name) => ({ child: children[name]!, entry: interpret({ path: [name], type: children[name]!.type, cap: children[name]!.ro_uri, size: children[name]!.size, metadata: children[name]!.metadata ?? {} }, shown) }));
    for (const k of all) {
      const key = k.entry.nameBytes.toString('latin1');
      if (taken.has(key) && o.onConflict) o.onConflict(encodePath(linkBytes({ name: key, up: at })));
      else {
        taken.add(key);
        kids.push(k);
      }
    }
    return { cap, at, kids, i: 0, again };
  };
  budget.enter(dircap);
  const stack = [await open(dircap, start, false)];
  const onPath = new Set([dircap]);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.kids.length) {
      stack.pop();
      onPath.delete(f.cap);
      continue;
    }
    o.signal?.throwIfAborted();
    const { child, entry } = f.kids[f.i++]!;
    const at: PathLink = { name: entry.nameBytes.toString('latin1'), up: f.at };
    const bytes = linkBytes(at);
    const shown = encodePath(bytes);
    yield { bytes, shown, child, entry };
    if (o.recursive === false || entry.kind !== 'dir' || child.type !== 'dirnode' || !child.ro_uri) continue;
    if (onPath.has(child.ro_uri)) {
      // A directory on its own path (a mutable directory linked into itself): handed out, not entered.
      o.onCycle?.(shown);
      continue;
    }
    const before = budget.enter(child.ro_uri);
    stack.push(await open(child.ro_uri, at, before || f.again));
    onPath.add(child.ro_uri);
  }
}
