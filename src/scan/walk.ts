/**
 * Phase 1's walk: turns a tree into queue entries, children before their directory, names
 * in byte order, never following a symlink. Names are read as bytes, so names that are not
 * valid UTF-8 survive. Excluded directories are never read. Entries that cannot be read are
 * reported through `onSkip` and the walk goes on.
 *
 * The walk uses synchronous calls inside a directory (far cheaper per entry than a round trip
 * through the thread pool) and yields batches, giving the event loop a turn now and then so
 * signals are handled promptly.
 *
 * Entries are looked up relative to their directory (the walk changes into it), which saves
 * the kernel a path walk from / for every lstat. The working directory is changed only within
 * synchronous stretches and restored before every yield or await, so no other code ever runs
 * with it changed.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, type BigIntStats, type Dirent, type Stats } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { chdir, cwd } from 'node:process';
import { setImmediate as turn } from 'node:timers/promises';
import { AppError, describeErrno, errnoCode, resourceLimit, ResourceLimitError } from '../errors.js';
import type { LeftOut, Selector } from './select.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../core/file-type.js';
import type { OwnFiles, OwnMatcher } from './own-files.js';
import { encodePath, type QueueEntry } from './queue-codec.js';

export type SkipReason = 'excluded' | 'special' | 'unreadable' | 'vanished';

export interface EntryMeta {
  caps?: string;
  acls?: string;
}

/**
 * The directories of the walk as it saw them, in queue order: their number, the newest ctime,
 * and a digest of every directory's path and ctime (from its lstat, taken before it was
 * listed). A directory whose ctime is still the same has not had an entry added, removed or
 * renamed since it was listed (a ctime, unlike an mtime, cannot be set back): this is what
 * proves a queue fresh (backup/queue-reuse.ts feeds the same digest from today's stats).
 */
export class DirDigest {
  private readonly h = createHash('sha256');
  count = 0;
  newestCtimeNs = -(1n << 63n);

  add(rel: Buffer, ctimeNs: bigint): void {
    this.count++;
    if (ctimeNs > this.newestCtimeNs) this.newestCtimeNs = ctimeNs;
    this.h.update(rel).update(`\0${ctimeNs}\n`);
  }

  digest(): string {
    return this.h.digest('hex');
  }
}

/** What kind of entry a stat says it is (Stats, BigIntStats and phase 2's EntryStat all do). */
export interface EntryKind {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface WalkOptions {
  /** The source directory (absolute; already resolved). */
  root: Buffer;
  /** What is left out besides the tool's own files: filters, excludes, markers, other file systems. */
  select?: Selector;
  /**
   * Reads capabilities and ACLs of an entry (the metadata module); none when absent. `at` is
   * the path to give the system calls: the bare name while the walk is in the entry's directory.
   */
  readMeta?: (abs: Buffer, st: EntryKind, at?: Buffer) => EntryMeta;
  /**
   * Told about every entry left out, and why. `detail` says what failed for unreadable ones;
   * `by` is the rule or pattern that excluded one.
   */
  onSkip?: (rel: Buffer, reason: SkipReason, detail?: string, by?: LeftOut) => void;
  /** Told about each directory kept empty: `why` is its marker file, or 'another file system'. */
  onEmptied?: (rel: Buffer, why: string) => void;
  batchSize?: number;
  /** Sizes of the regular files queued are added here as the walk goes (totals for progress). */
  sizes?: { bytes: number };
  /** The directories listed are added here, in queue order. */
  dirs?: DirDigest;
  /** The tool's own files inside the source: never listed. `onOwn` hears of each one left out. */
  own?: OwnFiles;
  onOwn?: (rel: Buffer) => void;
}

interface Frame {
  abs: Buffer;
  rel: Buffer;
  /** The relative path as text, for filter matching (invalid UTF-8 shows as U+FFFD). */
  relText: string;
  entry: QueueEntry;
  /** The directory's ctime when it was stat'ed, before it was listed. */
  ctimeNs: bigint;
  /** Matches the tool's own files when some are in this directory. */
  own?: OwnMatcher;
  dirents: Dirent<Buffer>[];
  next: number;
}

const SLASH = Buffer.from('/');

function join(a: Buffer, b: Buffer): Buffer {
  return a.length ? Buffer.concat([a, SLASH, b]) : b;
}

function entryFor(rel: Buffer, st: Stats | BigIntStats, meta: EntryMeta | undefined): QueueEntry {
  const mode = Number(st.mode);
  const isLink = (mode & S_IFMT) === S_IFLNK;
  const e: QueueEntry = { path: rel, uid: Number(st.uid), gid: Number(st.gid), mode: isLink ? null : mode };
  if (meta?.caps) e.caps = meta.caps;
  if (meta?.acls) e.acls = meta.acls;
  return e;
}

/**
 * A failure to read one entry is that entry's (skipped, reported); a limit of the process or
 * the system (EMFILE, ENFILE, ENOMEM) is the run's: thrown, it ends the walk.
 */
function entryFailure(rel: Buffer, e: unknown): string {
  if (e instanceof ResourceLimitError) throw e;
  const limit = resourceLimit(e, `reading ${JSON.stringify(encodePath(rel))}`);
  if (limit) throw limit;
  return describeErrno(e);
}

/** The source directory itself cannot be read: the run cannot start (one line, exit 1). */
function rootFailure(root: Buffer, e: unknown): never {
  const shown = `the source directory ${JSON.stringify(root.toString('utf8'))}`;
  throw resourceLimit(e, `reading ${shown}`) ?? new AppError(`cannot read ${shown}: ${describeErrno(e)}`, 'source');
}

/** Lists a directory sorted by name bytes; throws the system error. */
function listSorted(abs: Buffer): Dirent<Buffer>[] {
  const list = readdirSync(abs, { encoding: 'buffer', withFileTypes: true });
  return list.sort((a, b) => Buffer.compare(a.name, b.name));
}

export async function* walk(opts: WalkOptions): AsyncGenerator<QueueEntry[]> {
  const home = cwd();
  try {
    yield* walkFrom(opts, home);
  } finally {
    chdir(home);
  }
}

async function* walkFrom(opts: WalkOptions, home: string): AsyncGenerator<QueueEntry[]> {
  const batchSize = opts.batchSize ?? 512;
  const skip = opts.onSkip ?? (() => {});
  const select = opts.select;
  const filtering = select?.byPath ?? false;
  const byContents = select?.byContents ?? false;
  const oneFs = select?.oneFileSystem ?? false;
  /** The directory's contents, or none when a marker or a mount point says they are left out. */
  const contents = (rel: Buffer, dirents: Dirent<Buffer>[], at: Buffer | undefined, dev: bigint | undefined): Dirent<Buffer>[] => {
    if (oneFs && dev !== undefined && dev !== rootDev) {
      opts.onEmptied?.(rel, 'another file system');
      return [];
    }
    if (!byContents) return dirents;
    const marker = select!.markedBy(dirents.map((d) => d.name), at);
    if (marker === undefined) return dirents;
    opts.onEmptied?.(rel, marker);
    return [];
  };
  let rootDev = 0n;
  const own = (rel: Buffer) => opts.own?.inDir(rel);
  let rootFrame: Frame;
  try {
    const rootStat = lstatSync(opts.root, { bigint: true });
    rootDev = rootStat.dev;
    const rootEntry = entryFor(Buffer.alloc(0), rootStat, opts.readMeta?.(opts.root, rootStat));
    const rel = Buffer.alloc(0);
    rootFrame = { abs: opts.root, rel, relText: '', entry: rootEntry, ctimeNs: rootStat.ctimeNs, own: own(rel), dirents: contents(rel, listSorted(opts.root), opts.root, undefined), next: 0 };
  } catch (e) {
    if (e instanceof AppError) throw e;
    rootFailure(opts.root, e);
  }
  const stack: Frame[] = [rootFrame];
  let batch: QueueEntry[] = [];
  let sinceTurn = 0;
  let lastTurn = performance.now();
  /** The directory we are in, or null when in `home`. */
  let inside: Frame | null = null;
  const leave = () => {
    if (inside) chdir(home);
    inside = null;
  };

  while (stack.length) {
    // A turn of the event loop (signals are heard there) every 4096 entries, and every 50 ms
    // whatever the entries cost (a slow filesystem, long paths against many filters).
    if ((++sinceTurn & 63) === 0 && (sinceTurn >= 4096 || performance.now() - lastTurn > 50)) {
      sinceTurn = 0;
      leave();
      await turn();
      lastTurn = performance.now();
    }
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.dirents.length) {
      stack.pop();
      opts.dirs?.add(frame.rel, frame.ctimeNs);
      batch.push(frame.entry);
      if (batch.length >= batchSize) {
        leave();
        yield batch;
        batch = [];
      }
      continue;
    }
    if (inside !== frame) {
      // chdir takes text: a directory whose path is not valid UTF-8 is read by absolute path.
      const text = frame.abs.toString('utf8');
      leave();
      if (Buffer.from(text, 'utf8').equals(frame.abs)) {
        try {
          chdir(text);
          inside = frame;
        } catch {
          leave();
        }
      }
    }
    const d = frame.dirents[frame.next++]!;
    const rel = join(frame.rel, d.name);
    if (frame.own?.(d.name)) {
      opts.onOwn?.(rel);
      continue;
    }
    const relText = filtering ? (frame.relText ? `${frame.relText}/${d.name.toString('utf8')}` : d.name.toString('utf8')) : '';
    const abs = Buffer.concat([frame.abs, SLASH, d.name]);
    const local = inside === frame ? d.name : abs;
    const known = d.isDirectory() || d.isFile() || d.isSymbolicLink();
    const special = d.isSocket() || d.isFIFO() || d.isBlockDevice() || d.isCharacterDevice();
    if (filtering && known) {
      const by = select!.leftOut(relText, d.isDirectory());
      if (by) {
        skip(rel, 'excluded', undefined, by);
        continue;
      }
    }
    // Directories are stat'ed to the nanosecond: their ctimes go into the queue's DirDigest.
    let st: Stats | BigIntStats | undefined;
    try {
      st = d.isDirectory() ? lstatSync(local, { bigint: true, throwIfNoEntry: false }) : lstatSync(local, { throwIfNoEntry: false });
    } catch (e) {
      skip(rel, 'unreadable', entryFailure(rel, e));
      continue;
    }
    if (!st) {
      skip(rel, 'vanished');
      continue;
    }
    const type = Number(st.mode) & S_IFMT;
    if (special || (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK)) {
      skip(rel, 'special');
      continue;
    }
    // The type may have changed since readdir (or readdir could not tell): filter again then.
    if (filtering && (!known || (type === S_IFDIR) !== d.isDirectory())) {
      const by = select!.leftOut(relText, type === S_IFDIR);
      if (by) {
        skip(rel, 'excluded', undefined, by);
        continue;
      }
    }
    let meta: EntryMeta | undefined;
    try {
      meta = opts.readMeta?.(abs, st, local);
    } catch (e) {
      skip(rel, 'unreadable', entryFailure(rel, e));
      continue;
    }
    const entry = entryFor(rel, st, meta);
    if (type !== S_IFDIR) {
      if (type === S_IFREG && opts.sizes) opts.sizes.bytes += Number(st.size);
      batch.push(entry);
      if (batch.length >= batchSize) {
        leave();
        yield batch;
        batch = [];
      }
      continue;
    }
    let dirents: Dirent<Buffer>[];
    let ctimeNs: bigint;
    try {
      // A directory readdir could not tell was one: stat'ed again, to the nanosecond.
      const big = 'ctimeNs' in st ? st : lstatSync(local, { bigint: true });
      ctimeNs = big.ctimeNs;
      // A mount point is kept, as an empty directory, when the walk stays on one file system.
      dirents = oneFs && big.dev !== rootDev ? contents(rel, [], undefined, big.dev) : contents(rel, listSorted(local), inside === frame ? local : abs, undefined);
    } catch (e) {
      const why = entryFailure(rel, e);
      skip(rel, errnoCode(e) === 'ENOENT' ? 'vanished' : 'unreadable', why);
      continue;
    }
    stack.push({ abs, rel, relText, entry, ctimeNs, own: own(rel), dirents, next: 0 });
  }
  leave();
  if (batch.length) yield batch;
}
