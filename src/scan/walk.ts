/**
 * Phase 1's walk: turns a tree into queue entries, children before their directory, names
 * in byte order, never following a symlink. Names are read as bytes, so names that are not
 * valid UTF-8 survive. Excluded directories are never read. Entries that cannot be read are
 * reported through `onSkip` and the walk goes on.
 *
 * The walk uses synchronous calls inside a directory (far cheaper per entry than a round trip
 * through the thread pool) and yields batches, giving the event loop a turn now and then so
 * signals are handled promptly. Each directory is read in one call (dir-scan.ts: its sorted
 * names, each one's lstat relative to the directory's descriptor, and attribute names), taken
 * when the walk opens it; the working directory is never changed.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setImmediate as turn } from 'node:timers/promises';
import { AppError, describeErrno, errnoCode, errnoError, resourceLimit, ResourceLimitError } from '../errors.js';
import type { LeftOut, Selector } from './select.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../core/file-type.js';
import type { OwnFiles, OwnMatcher } from './own-files.js';
import { encodePath, type QueueEntry } from './queue-codec.js';
import type { EntryStat } from '../core/entry-stat.js';
import { lstatOf, type Lstat } from './lstat.js';
import { DT, scanDir, type DirScan, type ScanEntry } from './dir-scan.js';
import { scanCalls, type ScanCalls } from '../native.js';
import type { AttrMemo } from './attr-memo.js';

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
   * Reads capabilities and ACLs of an entry (the metadata module); none when absent.
   * `listed`: the names of its attributes as the directory's scan listed them (dir-scan.ts
   * ScanEntry.attrs), when it did.
   */
  readMeta?: (abs: Buffer, st: EntryKind, listed?: Buffer | number) => EntryMeta;
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
  /** The lstat to use for entries of directories listed the slow way (tests); default: the addon's. */
  lstat?: Lstat;
  /** The one-call directory scan (tests give null to list the slow way); default: the addon's. */
  scan?: ScanCalls | null;
  /** Which directories' entries had no ACL or capability at the last walk; told of tonight's (attr-memo.ts). Only with readMeta. */
  attrMemo?: AttrMemo;
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
  list: DirScan;
  /** Entries of `list` taken so far. */
  next: number;
}

const NOTHING: DirScan = { count: 0, clean: false, next: () => undefined, names: () => [] };

const SLASH = Buffer.from('/');
const ENOENT = 2;

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

export async function* walk(opts: WalkOptions): AsyncGenerator<QueueEntry[]> {
  yield* new Walker(opts).entries();
}

/** One entry of a directory, as the walk reads it. */
interface Named {
  frame: Frame;
  d: ScanEntry;
  rel: Buffer;
  relText: string;
  abs?: Buffer;
}

/**
 * The walk's state: a stack of open directories (each with its sorted entries) and the batch
 * being filled. `entries()` drives it; each entry goes
 * through `named` (own files, filters by name), `stat` (kind, filters by type), `meta`, then
 * is queued or opened as a directory.
 */
class Walker {
  private readonly stack: Frame[] = [];
  private batch: QueueEntry[] = [];
  private rootDev = 0n;
  private readonly skip: NonNullable<WalkOptions['onSkip']>;
  private readonly filtering: boolean;
  private readonly lstat: Lstat;
  private readonly scan: ScanCalls | undefined;
  private readonly batchSize: number;

  constructor(private readonly opts: WalkOptions) {
    this.skip = opts.onSkip ?? (() => {});
    this.filtering = opts.select?.byPath ?? false;
    this.lstat = opts.lstat ?? lstatOf();
    this.scan = opts.scan === null ? undefined : (opts.scan ?? scanCalls());
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
        await turn();
        lastTurn = performance.now();
      }
      const frame = this.stack[this.stack.length - 1]!;
      if (frame.next >= frame.list.count) {
        this.stack.pop();
        this.opts.dirs?.add(frame.rel, frame.st.ctimeNs);
        this.queue(frame.entry, frame.st);
      } else this.step(frame);
      if (this.batch.length >= this.batchSize) {
        yield this.batch;
        this.batch = [];
      }
    }
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
      return { abs: root, rel, relText: '', entry, st, own: this.own(rel), list: this.contents(rel, this.list(root, st), root, undefined), next: 0 };
    } catch (e) {
      if (e instanceof AppError) throw e;
      rootFailure(root, e);
    }
  }

  /** The next entry of `frame`: skipped, queued, or opened as a directory. */
  private step(frame: Frame): void {
    frame.next++;
    const n = this.named(frame, frame.list.next()!);
    if (!n) return;
    const st = this.stat(n);
    if (!st) return;
    let meta: EntryMeta | undefined;
    try {
      // Nothing to read when the scan listed no attributes (or the memo knows there are none),
      // or for a symlink (no ACL or capability is kept on one): most entries, most nights.
      const none = (n.d.attrs !== undefined && typeof n.d.attrs !== 'number' && !n.d.attrs.length) || (st.mode & S_IFMT) === S_IFLNK;
      meta = none ? undefined : this.opts.readMeta?.(this.abs(n), st, n.d.attrs);
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
  private named(frame: Frame, d: ScanEntry): Named | undefined {
    const rel = join(frame.rel, d.name);
    if (frame.own?.(d.name)) {
      this.opts.onOwn?.(rel);
      return undefined;
    }
    const relText = this.filtering ? (frame.relText ? `${frame.relText}/${d.name.toString('utf8')}` : d.name.toString('utf8')) : '';
    if (this.filtering && (d.type === DT.DIR || d.type === DT.REG || d.type === DT.LNK)) {
      const by = this.opts.select!.leftOut(relText, d.type === DT.DIR);
      if (by) {
        this.skip(rel, 'excluded', undefined, by);
        return undefined;
      }
    }
    return { frame, d, rel, relText };
  }

  /** The entry's lstat, unless it is gone, unreadable, special, or left out by its type. */
  private stat(n: Named): EntryStat | undefined {
    const { d, rel } = n;
    let st: EntryStat | undefined;
    try {
      // The scan took it (or failed to), unless the directory was listed the slow way.
      if (d.statErrno !== undefined && d.statErrno !== ENOENT) throw errnoError(d.statErrno, 'lstat');
      st = d.stat ?? (d.statErrno === undefined ? this.lstat(this.abs(n)) : undefined);
    } catch (e) {
      this.skip(rel, 'unreadable', entryFailure(rel, e));
      return undefined;
    }
    if (!st) {
      this.skip(rel, 'vanished');
      return undefined;
    }
    const type = st.mode & S_IFMT;
    const special = d.type === DT.SOCK || d.type === DT.FIFO || d.type === DT.BLK || d.type === DT.CHR;
    if (special || (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK)) {
      this.skip(rel, 'special');
      return undefined;
    }
    // The type may have changed since readdir (or readdir could not tell): filter again then.
    const known = d.type === DT.DIR || d.type === DT.REG || d.type === DT.LNK;
    if (this.filtering && (!known || (type === S_IFDIR) !== (d.type === DT.DIR))) {
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
    let list: DirScan;
    try {
      // A mount point is kept, as an empty directory, when the walk stays on one file system.
      const oneFs = this.opts.select?.oneFileSystem ?? false;
      list = oneFs && st.dev !== this.rootDev ? this.contents(rel, NOTHING, undefined, st.dev) : this.contents(rel, this.list(this.abs(n), st), this.abs(n), undefined);
    } catch (e) {
      const why = entryFailure(rel, e);
      this.skip(rel, errnoCode(e) === 'ENOENT' ? 'vanished' : 'unreadable', why);
      return undefined;
    }
    return { abs: this.abs(n), rel, relText: n.relText, entry, st, own: this.own(rel), list, next: 0 };
  }

  /** The entry's absolute path (made when first asked: most entries never need it). */
  private abs(n: Named): Buffer {
    return (n.abs ??= Buffer.concat([n.frame.abs, SLASH, n.d.name]));
  }

  /**
   * A directory's entries, sorted (with their stats and attribute names when the addon scans);
   * `st`: its lstat. The attribute memo says which entries need not be asked, and hears of it
   * when none had an ACL or a capability.
   */
  private list(path: Buffer, st: EntryStat): DirScan {
    const attrs = this.opts.readMeta !== undefined;
    const memo = attrs ? this.opts.attrMemo : undefined;
    const list = scanDir(path, { attrs, unchangedBefore: memo?.since(st) }, this.scan);
    if (memo && list.clean) memo.clean(st);
    return list;
  }

  /** The directory's contents, or none when a marker or a mount point says they are left out. */
  private contents(rel: Buffer, list: DirScan, at: Buffer | undefined, dev: bigint | undefined): DirScan {
    const select = this.opts.select;
    if ((select?.oneFileSystem ?? false) && dev !== undefined && dev !== this.rootDev) {
      this.opts.onEmptied?.(rel, 'another file system');
      return NOTHING;
    }
    if (!(select?.byContents ?? false)) return list;
    const marker = select!.markedBy(list.names(), at);
    if (marker === undefined) return list;
    this.opts.onEmptied?.(rel, marker);
    return NOTHING;
  }

  private own(rel: Buffer): OwnMatcher | undefined {
    return this.opts.own?.inDir(rel);
  }
}
