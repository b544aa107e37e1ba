/**
 * Phase 2's reader (restic's archiver loop): reads the queue as a stream and hands each line
 * to its stage — files and symlinks to the file stage (`files.save`), directories to the
 * directory stage (`dirs.save`, or `dirs.listed`) — building the tree of caps bottom-up. It
 * counts nothing and holds no stage's state: each stage is asked, and emits its own events.
 *
 * A directory's job waits for the jobs of its children, which all came before it. Open
 * directories are a stack (the queue lists each subtree contiguously), so memory is bounded by
 * the tree's depth and the width of the directories being assembled, never by the number of
 * lines. After each job it hands a stage, the reader waits for room in that stage: the
 * stages' pools are the only queues, and they are the back-pressure on this reader.
 *
 * The reader stats each entry itself (SourceStats: relative to its directory's descriptor).
 * It first tries to answer a directory whole: while a directory's lines come, its files and
 * symlinks are held (stat'ed, not yet looked up) and their stats hashed into its listing key
 * (cache/keys.ts ListingKey); at the directory's own line one lookup of that key gives the
 * dircap of an unchanged directory, and its children are never asked about. Otherwise the
 * held children go on as before: each file is asked about at once — an unchanged one answered
 * there, with no job and no promise — and only work (a re-hash, an upload, a directory)
 * becomes a job.
 *
 * When this run's walk wrote the queue, it also made each directory's listing key then
 * (listing-plan.ts; `plan`): the reader defers a directory's lines — no stat — until the
 * directory's own line, and answers it by that key when the lines read are the ones the walk
 * queued and every subdirectory was answered by its own plan. Otherwise the deferred lines go
 * on as below, in order (`undefer`), as if there had been no plan.
 *
 * A directory is not answered whole (its held children go on at once) when a child is left
 * out, has more than one link (its edge names another entry), is a subdirectory that was not
 * listable itself, or when more than HOLD_MAX children would be held: memory stays bounded
 * by HOLD_MAX × the depth of the tree. Its listing is not looked up or kept when a child
 * changed within the trust window, and not kept when a child's xattrs could not be read
 * whole (the directory stage: each child then lacks its `row`).
 *
 * Every line is checked as it is read (scan/queue-shape.ts: contents before their directory,
 * names in byte order, nothing twice). An edge describes the entry as it is now, never as the
 * queue remembers it: owner and mode come from the reader's stat, and ACLs and capabilities
 * are read again for an entry changed since the walk that built the queue began (its ctime
 * says so; `metaSince`).
 *
 * The first failure that is not local to one entry (the gateway beyond its retries, the
 * cache) aborts the run's signal — the stages report their own, the reader its own: the
 * reader and the stages stop, and the run ends with it.
 */
import type { Child } from '../core/child.js';
import { AppError, sourceError, SourceError } from '../errors.js';
import { ListingKey } from '../cache/keys.js';
import { showPath } from '../scan/phase1.js';
import { isDirEntry, isSymlinkEntry, parentOf, type QueueEntry } from '../scan/queue-codec.js';
import { readQueue } from '../scan/queue-file.js';
import { QueueShape } from '../scan/queue-shape.js';
import type { DirStage } from './dir-stage.js';
import type { EventSink } from './events.js';
import { absPath } from './file-plan.js';
import type { FileStage, Saved } from './file-stage.js';
import { addLine, HOLD_MAX, LINES_BASIS, type PlannedListing } from './listing-plan.js';
import { leaveOut, leaveOutChanged } from './skip.js';
import type { EntryStat, SourceStats } from './source-stat.js';

export { HOLD_MAX } from './listing-plan.js';

export interface ReaderOptions {
  queuePath: string;
  /** The source directory, absolute. */
  root: Buffer;
  /** Each entry's lstat, relative to its directory's descriptor. */
  source: Pick<SourceStats, 'lstat'>;
  files: Pick<FileStage, 'save' | 'room' | 'settled'>;
  dirs: Pick<DirStage, 'save' | 'listed' | 'room' | 'settled'>;
  /** What else listing keys depend on; undefined without a cache (no listings then). */
  listingSalt?: Buffer;
  /** Only a listing whose children's ctimes are all older than this (ns) is recorded or looked up. */
  trustedBefore: bigint;
  /**
   * The listing keys this run's walk made, taken at each directory's line in queue order
   * (listing-plan.ts); only for the queue this run's phase 1 just wrote, and with listingSalt.
   */
  plan?: { next(path: Buffer, lines: number): PlannedListing | undefined };
  /** ACLs and capabilities of an entry (meta/entry.ts), when extended metadata is backed up. */
  readMeta?: (abs: Buffer, st: EntryStat) => { caps?: string; acls?: string };
  /**
   * Entries whose ctime is this or newer (ns) changed after the walk that built the queue
   * began, give or take the clock's granularity: their ACLs and capabilities are read again.
   */
  metaSince: bigint;
  emit: EventSink;
  signal: AbortSignal;
  /** Stops the run with a fatal error (the first one stands). */
  fail: (e: unknown) => void;
}

interface Held {
  entry: QueueEntry;
  st: EntryStat;
  link: boolean;
}

/** A line deferred while its directory may be answered by its planned listing. */
type Deferred = { entry: QueueEntry; sub?: undefined } | { entry: QueueEntry; sub: { done: Saved; st: EntryStat | undefined; listing: Buffer | undefined } };

interface OpenDir {
  path: Buffer;
  children: Saved[];
  /**
   * With a plan: the lines of its files and symlinks (not stat'ed) and its subdirectories'
   * outcomes, in order, until its own line says whether its planned listing answers it; null
   * once they have gone on (`undefer`).
   */
  deferred: Deferred[] | null;
  /** Files and symlinks among `deferred`. */
  deferredFiles: number;
  /** The check of the paths of its lines read so far (listing-plan.ts addLine). */
  lines: number;
  /**
   * A subdirectory was not answered by its own planned listing: the planned key of this one,
   * which holds the subdirectory's planned key, does not describe its children as they are.
   */
  unplanned: boolean;
  /** Its listing so far; null once it cannot be answered whole. */
  listing: ListingKey | null;
  /** Files and symlinks stat'ed, not yet asked about (while `listing` is not null). */
  held: Held[];
}

class QueueReader {
  private readonly stack: OpenDir[] = [];
  private root?: Saved;

  constructor(private readonly o: ReaderOptions) {}

  async run(): Promise<Child> {
    try {
      await this.readLines();
    } catch (e) {
      this.o.fail(e);
    } finally {
      // Whatever happened, the jobs that started settle before the run reports.
      await Promise.all([this.o.files.settled(), this.o.dirs.settled()]);
    }
    this.o.signal.throwIfAborted();
    const root = await this.root;
    if (!root) throw new AppError('the source directory itself could not be read in phase 2');
    return root;
  }

  private async readLines(): Promise<void> {
    const shape = new QueueShape(this.o.queuePath);
    for await (const { entry, lineNo } of readQueue(this.o.queuePath)) {
      this.o.signal.throwIfAborted();
      shape.accept(entry, lineNo);
      const wait = this.place(entry);
      if (wait) await wait;
    }
    shape.end();
  }

  /**
   * Phase 2's lstat of a queue entry; undefined (after a warning and an event) when the entry
   * cannot be used.
   */
  private stat(e: QueueEntry, want: 'file' | 'symlink' | 'dir'): EntryStat | undefined {
    let st: EntryStat | undefined;
    try {
      st = this.o.source.lstat(e.path);
    } catch (err) {
      const typed = sourceError(showPath(e.path), err);
      if (!(typed instanceof SourceError)) throw typed;
      leaveOut(this.o.emit, e.path, typed);
      return undefined;
    }
    if (!st) {
      leaveOutChanged(this.o.emit, e.path, 'vanished', want);
      return undefined;
    }
    const is = want === 'file' ? st.isFile() : want === 'symlink' ? st.isSymbolicLink() : st.isDirectory();
    if (!is) {
      leaveOutChanged(this.o.emit, e.path, 'changed-type', want);
      return undefined;
    }
    return st;
  }

  /**
   * The entry as it is now (`st`, just stat'ed): owner and mode from the stat; ACLs and
   * capabilities read again when its ctime is not older than the walk that listed it.
   */
  private current(e: QueueEntry, st: EntryStat): void {
    asItIsNow(e, st, this.o);
  }

  /**
   * Places the entry: held for its directory's listing, answered, or handed to its stage. A
   * wait only when a stage has no room (or for a directory): an unchanged file costs none.
   */
  private place(entry: QueueEntry): Promise<void> | undefined {
    const parent = parentOf(entry.path);
    if (isDirEntry(entry)) return this.placeDir(entry, parent);
    const open = this.openFor(parent!);
    if (open.deferred) {
      open.deferred.push({ entry });
      open.lines = addLine(open.lines, entry.path);
      // As many as a listing may hold: beyond, its planned listing is none (listing-plan.ts).
      return ++open.deferredFiles >= HOLD_MAX ? this.undefer(open) : undefined;
    }
    return this.placeFile(open, entry);
  }

  /** A file's or symlink's line in its open directory: stat'ed, then held for the listing, or asked about. */
  private placeFile(open: OpenDir, entry: QueueEntry): Promise<void> | undefined {
    const link = isSymlinkEntry(entry);
    const st = this.stat(entry, link ? 'symlink' : 'file');
    if (!st) {
      const wait = open.listing ? this.unlist(open) : undefined;
      open.children.push(null);
      return wait;
    }
    this.current(entry, st);
    if (open.listing && (link || st.nlink === 1n)) {
      open.listing.add(link ? 'symlink' : 'file', entry, st);
      open.held.push({ entry, st, link });
      return open.held.length >= HOLD_MAX ? this.unlist(open) : undefined;
    }
    const wait = open.listing ? this.unlist(open) : undefined;
    return wait ? wait.then(() => this.save(open, entry, st)) : this.save(open, entry, st);
  }

  /** A directory's line: answered by its listing, or its (held) children go on and it is a job. */
  private async placeDir(entry: QueueEntry, parent: Buffer | null): Promise<void> {
    const top = this.stack[this.stack.length - 1];
    // The shape is checked: the open directory on top, if any, is this one.
    const own = top?.path.equals(entry.path) ? this.stack.pop()! : this.opened(entry.path);
    // One planned listing per directory line, in queue order, whatever becomes of it.
    const planned = this.o.plan?.next(entry.path, own.lines);
    const st = this.stat(entry, 'dir');
    let done: Saved = null;
    let listing: Buffer | undefined;
    let byPlan = false;
    if (st) {
      this.current(entry, st);
      // Its children as this run's walk saw them name a known listing: none of them is stat'ed.
      const answered = planned && own.deferred && !own.unplanned ? this.o.dirs.listed(entry, st, planned.key, { files: planned.files, symlinks: planned.symlinks, bytes: planned.bytes }) : undefined;
      if (answered) {
        done = answered;
        listing = planned!.key;
        byPlan = true;
      } else {
        if (own.deferred) await this.undefer(own);
        // As with a file's mtime: a change in the same clock tick as a recent ctime would not
        // show, so a listing with a child changed in the last moments is neither used nor kept.
        if (own.listing && own.listing.newest < this.o.trustedBefore) listing = own.listing.key(entry.path);
        const again = listing ? this.o.dirs.listed(entry, st, listing, heldCounts(own.held)) : undefined;
        if (again) done = again;
        else {
          if (own.listing) await this.unlist(own);
          done = this.o.dirs.save(entry, st, own.children, listing);
          await this.o.dirs.room();
        }
      }
    } else if (own.deferred) await this.undefer(own);
    if (parent === null) {
      this.root = done;
      return;
    }
    const up = this.openFor(parent);
    if (!byPlan) up.unplanned = true;
    await this.attach(up, entry, st, listing, done);
  }

  /** A subdirectory's outcome in its parent: its listing key added to the parent's, or the parent unlisted. */
  private attach(up: OpenDir, entry: QueueEntry, st: EntryStat | undefined, listing: Buffer | undefined, done: Saved): Promise<void> | undefined {
    if (up.deferred) {
      // Held until the parent's own line (the root's: until the end). Its path in memory of its
      // own: a small slice of Buffer's shared pool would keep its whole block for as long.
      entry.path = ownCopy(entry.path);
      up.deferred.push({ entry, sub: { done, st, listing } });
      up.lines = addLine(up.lines, entry.path);
      return undefined;
    }
    if (listing && up.listing) up.listing.add('dir', entry, st!, listing);
    else if (up.listing) {
      const wait = this.unlist(up);
      if (wait) return wait.then(() => void up.children.push(done));
    }
    up.children.push(done);
    return undefined;
  }

  /**
   * The directory is not answered by its planned listing: its deferred lines go on, in order,
   * as they would have without a plan (and later ones at once).
   */
  private undefer(open: OpenDir): Promise<void> | undefined {
    const lines = open.deferred!;
    open.deferred = null;
    for (let i = 0; i < lines.length; i++) {
      const wait = this.replay(open, lines[i]!);
      if (wait) return this.replayRest(open, lines, i + 1, wait);
    }
    return undefined;
  }

  private async replayRest(open: OpenDir, lines: readonly Deferred[], from: number, wait: Promise<void>): Promise<void> {
    await wait;
    for (let i = from; i < lines.length; i++) {
      const next = this.replay(open, lines[i]!);
      if (next) await next;
    }
  }

  private replay(open: OpenDir, line: Deferred): Promise<void> | undefined {
    if (!line.sub) return this.placeFile(open, line.entry);
    return this.attach(open, line.entry, line.sub.st, line.sub.listing, line.sub.done);
  }

  /**
   * The directory cannot be answered whole: its held children go on now, and later ones at
   * once (callers skip it once `listing` is null).
   */
  private unlist(open: OpenDir): Promise<void> | undefined {
    open.listing = null;
    const held = open.held;
    open.held = [];
    for (let i = 0; i < held.length; i++) {
      const wait = this.save(open, held[i]!.entry, held[i]!.st);
      if (wait) return this.saveRest(open, held, i + 1, wait);
    }
    return undefined;
  }

  private async saveRest(open: OpenDir, held: readonly Held[], from: number, wait: Promise<void>): Promise<void> {
    await wait;
    for (let i = from; i < held.length; i++) {
      const next = this.save(open, held[i]!.entry, held[i]!.st);
      if (next) await next;
    }
  }

  /**
   * A file's or symlink's Child: answered by the file stage at once, or the promise of its
   * job — then the wait for room in the stage, if it is full.
   */
  private save(open: OpenDir, entry: QueueEntry, st: EntryStat): Promise<void> | undefined {
    const saved = this.o.files.save(entry, st);
    open.children.push(saved);
    return saved instanceof Promise ? this.o.files.room() : undefined;
  }

  /** The open directory collecting `parent`'s children, opened when its first child comes. */
  private openFor(parent: Buffer): OpenDir {
    const top = this.stack[this.stack.length - 1];
    if (top?.path.equals(parent)) return top;
    const opened = this.opened(parent);
    this.stack.push(opened);
    return opened;
  }

  private opened(path: Buffer): OpenDir {
    const salt = this.o.listingSalt;
    return { path, children: [], listing: salt ? new ListingKey(salt) : null, held: [], deferred: salt && this.o.plan ? [] : null, deferredFiles: 0, lines: LINES_BASIS, unplanned: false };
  }
}

/**
 * The entry as it is now (`st`, just stat'ed): owner and mode from the stat; ACLs and
 * capabilities read again when its ctime is not older than the walk that listed it.
 */
export function asItIsNow(e: QueueEntry, st: EntryStat, o: Pick<ReaderOptions, 'root' | 'readMeta' | 'metaSince'>): void {
  e.uid = st.uid;
  e.gid = st.gid;
  if (e.mode !== null) e.mode = st.mode;
  const read = o.readMeta;
  if (read && st.ctimeNs >= o.metaSince) {
    const m = read(absPath(o.root, e.path), st);
    e.caps = m.caps;
    e.acls = m.acls;
  }
}

function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

function heldCounts(held: readonly Held[]): { files: number; symlinks: number; bytes: number } {
  const c = { files: 0, symlinks: 0, bytes: 0 };
  for (const h of held) {
    if (h.link) c.symlinks++;
    else {
      c.files++;
      c.bytes += Number(h.st.size);
    }
  }
  return c;
}

/** Phase 2 over the queue file: the root's Child. The run ends with the first fatal error. */
export function readQueueFile(o: ReaderOptions): Promise<Child> {
  return new QueueReader(o).run();
}
