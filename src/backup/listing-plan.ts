/**
 * Listing keys made in phase 1, so that phase 2 need not stat a directory's children again.
 *
 * Phase 1's walk has just stat'ed every entry it queues (walk.ts `onQueued`: each entry with
 * the stat its line was made from, in queue order). The planner hashes those stats into each
 * directory's listing key exactly as phase 2's reader would (cache/keys.ts ListingKey, the
 * same salt, the same rules: no child with more than one link, at most HOLD_MAX held
 * children, every subdirectory listable itself) and keeps, per directory in queue order, the
 * key's hash and the counts the summary needs. Phase 2's reader takes them in the same order
 * (`next`): a directory whose planned key names a known listing is answered by it without its
 * children being stat'ed; any other one has its children stat'ed and handled as before.
 *
 * Why this is safe: the key is made of the same facts (path, owner, mode, ACLs and
 * capabilities as the line has them, size, mtime, ctime, inode of every child), taken by this
 * run's own walk moments before — the queue this run just wrote, never an older one. A plan
 * is trusted only for directories whose children all changed before the run began (less
 * TRUST_NS, the clock's granularity), the same rule as phase 2's. A child changed after the
 * walk saw it is then backed up as the walk saw it: the backup shows that directory as it was
 * at the walk, as any backup shows a file changed while it runs either way.
 *
 * Bounded: a fixed-size record per directory (RECORD bytes) up to MAX_DIRS directories, and
 * their paths up to MAX_PATH_BYTES in all; beyond that, directories have no plan (phase 2
 * stats their children as before), or the plan is not whole (plan-answer.ts: no shortcut). A record
 * carries a check of its directory's path and one of the paths of its children's lines
 * (FNV-1a): a directory whose lines in the queue read are not the ones the walk queued (the
 * file was replaced in between) is not answered by its plan, and at the first directory whose
 * path differs the plan is no longer used at all.
 */
import { ListingKey } from '../cache/keys.js';
import type { EntryStat } from '../core/entry-stat.js';
import { isDirEntry, isSymlinkEntry, parentOf, type QueueEntry } from '../scan/queue-codec.js';

/** The most children of one directory held while it may still be answered whole (phase 2's reader, and here). */
export const HOLD_MAX = 4096;

/** A directory's listing key as phase 1 made it, and the counts of what it stands for. */
export interface PlannedListing {
  key: Buffer;
  files: number;
  symlinks: number;
  bytes: number;
}

/** Bytes per directory: flag, digest (32), files, symlinks, bytes (f64), path length, path FNV-1a, lines FNV-1a, path offset. */
const RECORD = 1 + 32 + 4 + 4 + 8 + 4 + 4 + 4 + 4;

/** The FNV-1a basis: the `lines` check of a directory with no lines yet. */
export const LINES_BASIS = 0x811c9dc5;

/** The lines check with one more line, `path` (phase 2's reader keeps the same for the lines it reads). */
export function addLine(h: number, path: Buffer): number {
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path[i]!, 0x01000193);
  return Math.imul(h ^ 0x2f, 0x01000193) >>> 0;
}
/** Directories planned at most (their records: MAX_DIRS × RECORD bytes, 16 MiB). */
export const MAX_DIRS = 256 * 1024;
/** Bytes of the planned directories' paths kept at most (for plan-answer.ts); beyond, the plan is not whole. */
export const MAX_PATH_BYTES = 16 * 1024 * 1024;

/** A planned directory, as plan-answer.ts takes them: its path, listing key and counts. */
export interface PlannedDir extends PlannedListing {
  path: Buffer;
}

interface Open {
  path: Buffer;
  listing: ListingKey | null;
  held: number;
  /** The lines check (addLine) over its children's paths. */
  lines: number;
  files: number;
  symlinks: number;
  bytes: number;
}

/** A listing key (cache/keys.ts ListingKey.key): the path, a NUL, the digest at `r[at…at+32]`. */
function keyOf(path: Buffer, r: Buffer, at: number): Buffer {
  const key = Buffer.allocUnsafeSlow(path.length + 1 + 32);
  path.copy(key, 0);
  key[path.length] = 0;
  r.copy(key, path.length + 1, at, at + 32);
  return key;
}

function fnv1a(b: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

export class ListingPlanner {
  private readonly stack: Open[] = [];
  private records = Buffer.alloc(0);
  private count = 0;
  private readIndex = 0;
  private broken = false;
  /** The planned directories' paths, one after another (each record has its offset). */
  private paths = Buffer.alloc(0);
  private pathBytes = 0;
  /** Some directory has no key, no record, or no path kept: the plan is not whole. */
  private partial = false;
  /** The root's line and the stat it was made from (its line comes last). */
  private rootLine?: { entry: QueueEntry; st: EntryStat };

  constructor(
    /** The salt phase 2's listing keys take (backup/phase2.ts listingSaltOf). */
    private readonly salt: Buffer,
    /** Only directories whose children's ctimes are all older than this (ns) are planned. */
    private readonly trustedBefore: bigint,
    private readonly maxDirs = MAX_DIRS,
  ) {}

  /** The walk's `onQueued`: each entry queued, in queue order, with its stat. */
  readonly queued = (e: QueueEntry, st: EntryStat): void => {
    const parent = parentOf(e.path);
    if (isDirEntry(e)) return this.dir(e, st, parent);
    const open = this.openFor(parent!);
    open.lines = addLine(open.lines, e.path);
    if (!open.listing) return;
    const link = isSymlinkEntry(e);
    if (!link && st.nlink !== 1n) {
      open.listing = null;
      return;
    }
    open.listing.add(link ? 'symlink' : 'file', e, st);
    if (link) open.symlinks++;
    else {
      open.files++;
      open.bytes += Number(st.size);
    }
    if (++open.held >= HOLD_MAX) open.listing = null;
  };

  private dir(e: QueueEntry, st: EntryStat, parent: Buffer | null): void {
    const top = this.stack[this.stack.length - 1];
    const own = top?.path.equals(e.path) ? this.stack.pop()! : this.opened(e.path);
    const key = own.listing && own.listing.newest < this.trustedBefore ? own.listing.key(e.path) : undefined;
    this.record(e.path, key, own);
    if (parent === null) {
      this.rootLine = { entry: e, st };
      return;
    }
    const up = this.openFor(parent);
    up.lines = addLine(up.lines, e.path);
    if (key && up.listing) up.listing.add('dir', e, st, key);
    else up.listing = null;
  }

  private record(path: Buffer, key: Buffer | undefined, own: Open): void {
    if (!key) this.partial = true;
    if (this.count >= this.maxDirs) {
      this.partial = true;
      return;
    }
    const pathAt = this.keepPath(path);
    const need = (this.count + 1) * RECORD;
    if (this.records.length < need) {
      const grown = Buffer.alloc(Math.min(Math.max(need * 2, 64 * RECORD), this.maxDirs * RECORD));
      this.records.copy(grown);
      this.records = grown;
    }
    let o = this.count++ * RECORD;
    const r = this.records;
    r[o++] = key ? 1 : 0;
    if (key) key.copy(r, o, key.length - 32);
    o += 32;
    o = r.writeUInt32LE(own.files, o);
    o = r.writeUInt32LE(own.symlinks, o);
    o = r.writeDoubleLE(own.bytes, o);
    o = r.writeUInt32LE(path.length, o);
    o = r.writeUInt32LE(fnv1a(path), o);
    o = r.writeUInt32LE(own.lines, o);
    r.writeUInt32LE(pathAt, o);
  }

  /** Keeps the path (its offset in `paths`); 0 once MAX_PATH_BYTES are kept (the plan is then not whole). */
  private keepPath(path: Buffer): number {
    if (this.partial || this.pathBytes + path.length > MAX_PATH_BYTES) {
      this.partial = true;
      return 0;
    }
    if (this.paths.length < this.pathBytes + path.length) {
      const grown = Buffer.alloc(Math.min(Math.max((this.pathBytes + path.length) * 2, 64 * 1024), MAX_PATH_BYTES));
      this.paths.copy(grown, 0, 0, this.pathBytes);
      this.paths = grown;
    }
    const at = this.pathBytes;
    this.pathBytes += path.copy(this.paths, at);
    return at;
  }

  /**
   * The root's line with the stat it was made from, when every directory the walk queued has a
   * planned listing key and its path kept (plan-answer.ts); undefined otherwise.
   */
  whole(): { entry: QueueEntry; st: EntryStat } | undefined {
    return this.partial || this.count === 0 ? undefined : this.rootLine;
  }

  /** Every planned directory, in queue order (the root last); only when `whole()`. */
  *planned(): Generator<PlannedDir> {
    if (!this.whole()) return;
    const r = this.records;
    for (let i = 0; i < this.count; i++) {
      const o = i * RECORD;
      const len = r.readUInt32LE(o + 49);
      const at = r.readUInt32LE(o + 61);
      const path = this.paths.subarray(at, at + len);
      yield { path, key: keyOf(path, r, o + 1), files: r.readUInt32LE(o + 33), symlinks: r.readUInt32LE(o + 37), bytes: r.readDoubleLE(o + 41) };
    }
  }

  /**
   * Phase 2's reader, at each directory's line in queue order: the listing key planned for
   * `path` and its counts; undefined when it has none, when `lines` (addLine over the paths of
   * the lines read for it) is not what the walk queued, or once the plan no longer matches
   * the queue.
   */
  next(path: Buffer, lines: number): PlannedListing | undefined {
    if (this.broken || this.readIndex >= this.count) return undefined;
    let o = this.readIndex++ * RECORD;
    const r = this.records;
    const pathAt = o + 1 + 32 + 16;
    if (r.readUInt32LE(pathAt) !== path.length || r.readUInt32LE(pathAt + 4) !== fnv1a(path)) {
      this.broken = true;
      return undefined;
    }
    if (r[o++] !== 1 || r.readUInt32LE(pathAt + 8) !== lines) return undefined;
    const key = keyOf(path, r, o);
    o += 32;
    return { key, files: r.readUInt32LE(o), symlinks: r.readUInt32LE(o + 4), bytes: r.readDoubleLE(o + 8) };
  }

  private openFor(parent: Buffer): Open {
    const top = this.stack[this.stack.length - 1];
    if (top?.path.equals(parent)) return top;
    const opened = this.opened(parent);
    this.stack.push(opened);
    return opened;
  }

  private opened(path: Buffer): Open {
    return { path, listing: new ListingKey(this.salt), held: 0, lines: LINES_BASIS, files: 0, symlinks: 0, bytes: 0 };
  }
}
