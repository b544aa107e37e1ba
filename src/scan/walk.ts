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
import { readdirSync, type Dirent } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { chdir, cwd } from 'node:process';
import { setImmediate as turn } from 'node:timers/promises';
import { AppError, describeErrno, errnoCode, resourceLimit, ResourceLimitError } from '../errors.js';
import type { LeftOut, Selector } from './select.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../core/file-type.js';
import type { OwnFiles, OwnMatcher } from './own-files.js';
import { encodePath, type QueueEntry } from './queue-codec.js';
import type { EntryStat } from '../core/entry-stat.js';
import { lstatOf, type Lstat } from './lstat.js';

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
  /**
   * Told about every entry queued, in queue order, with the stat its line was made from (a
   * directory's: taken before it was listed). Phase 2's listing plan is built from these.
   */
  onQueued?: (entry: QueueEntry, st: EntryStat) => void;
  /** The lstat to use (tests); default: the addon's, relative to the working directory. */
  lstat?: Lstat;
}

interface Frame {
  abs: Buffer;
  rel: Buffer;
  /** The relative path as text, for filter matching (invalid UTF-8 shows as U+FFFD). */
  relText: string;
  entry: QueueEntry;
  /** The directory's stat, taken before it was listed (its ctime goes into the DirDigest). */
  st: EntryStat;
  /** Matches the tool's own files when some are in this directory. */
  own?: OwnMatcher;
  dirents: Dirent<Buffer>[];
  next: number;
}

const SLASH = Buffer.from('/');

function join(a: Buffer, b: Buffer): Buffer {
  return a.length ? Buffer.concat([a, SLASH, b]) : b;
}

function entryFor(rel: Buffer, st: EntryStat, meta: EntryMeta | undefined): QueueEntry {
  const mode = st.mode;
  const isLink = (mode & S_IFMT) === S_IFLNK;
  const e: QueueEntry = { path: rel, uid: st.uid, gid: st.gid, mode: isLink ? null : mode };
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
  const walker = new Walker(opts, home);
  try {
    yield* walker.entries();
  } finally {
    chdir(home);
  }
}

/** One entry of a directory, as the walk reads it (`local`: the path to give system calls). */
interface Named {
  frame: Frame;
  d: Dirent<Buffer>;
  rel: Buffer;
  relText: string;
  abs: Buffer;
  local: Buffer;
}

/**
 * The walk's state: a stack of open directories (each with its sorted dirents), the batch
 * being filled, and the directory the process is in. `entries()` drives it; each entry goes
 * through `named` (own files, filters by name), `stat` (kind, filters by type), `meta`, then
 * is queued or opened as a directory.
 */
class Walker {
  private readonly stack: Frame[] = [];
  private batch: QueueEntry[] = [];
  /** The directory we are in, or null when in `home`. */
  private inside: Frame | null = null;
  private rootDev = 0n;
  private readonly skip: NonNullable<WalkOptions['onSkip']>;
  private readonly filtering: boolean;
  private readonly lstat: Lstat;
  private readonly batchSize: number;

  constructor(
    private readonly opts: WalkOptions,
    private readonly home: string,
  ) {
    this.skip = opts.onSkip ?? (() => {});
    this.filtering = opts.select?.byPath ?? false;
    this.lstat = opts.lstat ?? lstatOf();
    this.batchSize = opts.batchSize ?? 512;
  }

  async *entries(): AsyncGenerator<QueueEntry[]> {
    this.stack.push(this.rootFrame());
    let sinceTurn = 0;
    let lastTurn = performance.now();
    while (this.stack.length) {
      // A turn of the event loop (signals are heard there) every 4096 entries, and every 50 ms
      // whatever the entries cost (a slow filesystem, long paths against many filters).
      if ((++sinceTurn & 63) === 0 && (sinceTurn >= 4096 || performance.now() - lastTurn > 50)) {
        sinceTurn = 0;
        this.leave();
        await turn();
        lastTurn = performance.now();
      }
      const frame = this.stack[this.stack.length - 1]!;
      if (frame.next >= frame.dirents.length) {
        this.stack.pop();
        this.opts.dirs?.add(frame.rel, frame.st.ctimeNs);
        this.queue(frame.entry, frame.st);
      } else this.step(frame);
      if (this.batch.length >= this.batchSize) {
        this.leave();
        yield this.batch;
        this.batch = [];
      }
    }
    this.leave();
    if (this.batch.length) yield this.batch;
  }

  private rootFrame(): Frame {
    const root = this.opts.root;
    try {
      const st = this.lstat(root);
      if (!st) throw Object.assign(new Error('no such file or directory'), { code: 'ENOENT' });
      this.rootDev = st.dev;
      const entry = entryFor(Buffer.alloc(0), st, this.opts.readMeta?.(root, st));
      const rel = Buffer.alloc(0);
      return { abs: root, rel, relText: '', entry, st, own: this.own(rel), dirents: this.contents(rel, listSorted(root), root, undefined), next: 0 };
    } catch (e) {
      if (e instanceof AppError) throw e;
      rootFailure(root, e);
    }
  }

  /** The next entry of `frame`: skipped, queued, or opened as a directory. */
  private step(frame: Frame): void {
    this.enter(frame);
    const n = this.named(frame, frame.dirents[frame.next++]!);
    if (!n) return;
    const st = this.stat(n);
    if (!st) return;
    let meta: EntryMeta | undefined;
    try {
      meta = this.opts.readMeta?.(n.abs, st, n.local);
    } catch (e) {
      this.skip(n.rel, 'unreadable', entryFailure(n.rel, e));
      return;
    }
    const entry = entryFor(n.rel, st, meta);
    if ((st.mode & S_IFMT) !== S_IFDIR) {
      if ((st.mode & S_IFMT) === S_IFREG && this.opts.sizes) this.opts.sizes.bytes += Number(st.size);
      this.queue(entry, st);
      return;
    }
    const opened = this.opened(n, entry, st);
    if (opened) this.stack.push(opened);
  }

  private queue(entry: QueueEntry, st: EntryStat): void {
    this.batch.push(entry);
    this.opts.onQueued?.(entry, st);
  }

  /** The entry's paths, unless it is one of the tool's own files or a filter leaves it out by name. */
  private named(frame: Frame, d: Dirent<Buffer>): Named | undefined {
    const rel = join(frame.rel, d.name);
    if (frame.own?.(d.name)) {
      this.opts.onOwn?.(rel);
      return undefined;
    }
    const relText = this.filtering ? (frame.relText ? `${frame.relText}/${d.name.toString('utf8')}` : d.name.toString('utf8')) : '';
    const abs = Buffer.concat([frame.abs, SLASH, d.name]);
    const local = this.inside === frame ? d.name : abs;
    if (this.filtering && (d.isDirectory() || d.isFile() || d.isSymbolicLink())) {
      const by = this.opts.select!.leftOut(relText, d.isDirectory());
      if (by) {
        this.skip(rel, 'excluded', undefined, by);
        return undefined;
      }
    }
    return { frame, d, rel, relText, abs, local };
  }

  /** The entry's lstat, unless it is gone, unreadable, special, or left out by its type. */
  private stat(n: Named): EntryStat | undefined {
    const { d, rel } = n;
    let st: EntryStat | undefined;
    try {
      st = this.lstat(n.local);
    } catch (e) {
      this.skip(rel, 'unreadable', entryFailure(rel, e));
      return undefined;
    }
    if (!st) {
      this.skip(rel, 'vanished');
      return undefined;
    }
    const type = st.mode & S_IFMT;
    const special = d.isSocket() || d.isFIFO() || d.isBlockDevice() || d.isCharacterDevice();
    if (special || (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK)) {
      this.skip(rel, 'special');
      return undefined;
    }
    // The type may have changed since readdir (or readdir could not tell): filter again then.
    const known = d.isDirectory() || d.isFile() || d.isSymbolicLink();
    if (this.filtering && (!known || (type === S_IFDIR) !== d.isDirectory())) {
      const by = this.opts.select!.leftOut(n.relText, type === S_IFDIR);
      if (by) {
        this.skip(rel, 'excluded', undefined, by);
        return undefined;
      }
    }
    return st;
  }

  /** A directory's frame, its entries listed (none when a marker or a mount point says so). */
  private opened(n: Named, entry: QueueEntry, st: EntryStat): Frame | undefined {
    const { rel } = n;
    let dirents: Dirent<Buffer>[];
    try {
      // A mount point is kept, as an empty directory, when the walk stays on one file system.
      const oneFs = this.opts.select?.oneFileSystem ?? false;
      dirents = oneFs && st.dev !== this.rootDev ? this.contents(rel, [], undefined, st.dev) : this.contents(rel, listSorted(n.local), this.inside === n.frame ? n.local : n.abs, undefined);
    } catch (e) {
      const why = entryFailure(rel, e);
      this.skip(rel, errnoCode(e) === 'ENOENT' ? 'vanished' : 'unreadable', why);
      return undefined;
    }
    return { abs: n.abs, rel, relText: n.relText, entry, st, own: this.own(rel), dirents, next: 0 };
  }

  /** The directory's contents, or none when a marker or a mount point says they are left out. */
  private contents(rel: Buffer, dirents: Dirent<Buffer>[], at: Buffer | undefined, dev: bigint | undefined): Dirent<Buffer>[] {
    const select = this.opts.select;
    if ((select?.oneFileSystem ?? false) && dev !== undefined && dev !== this.rootDev) {
      this.opts.onEmptied?.(rel, 'another file system');
      return [];
    }
    if (!(select?.byContents ?? false)) return dirents;
    const marker = select!.markedBy(
      dirents.map((d) => d.name),
      at,
    );
    if (marker === undefined) return dirents;
    this.opts.onEmptied?.(rel, marker);
    return [];
  }

  private own(rel: Buffer): OwnMatcher | undefined {
    return this.opts.own?.inDir(rel);
  }

  /** Into the frame's directory (by bare names from then on); chdir takes text, so a path that is not valid UTF-8 stays absolute. */
  private enter(frame: Frame): void {
    if (this.inside === frame) return;
    const text = frame.abs.toString('utf8');
    this.leave();
    if (!Buffer.from(text, 'utf8').equals(frame.abs)) return;
    try {
      chdir(text);
      this.inside = frame;
    } catch {
      this.leave();
    }
  }

  private leave(): void {
    if (this.inside) chdir(this.home);
    this.inside = null;
  }
}
