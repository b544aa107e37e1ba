/**
 * Phase 2's reader: reads the queue as a stream and hands each line to its stage — files and
 * symlinks to the file stage, directories to the directory stage — building the tree of caps
 * bottom-up.
 *
 * A directory's job waits for the jobs of its children, which all came before it. Open
 * directories are a stack (the queue lists each subtree contiguously), so memory is bounded by
 * the tree's depth and the width of the directories being assembled, never by the number of
 * lines. Submitting a job waits for room in its stage: the stages' pools are the only queues,
 * and they are the back-pressure on this reader.
 *
 * The reader stats each entry itself (SourceStats: relative to its directory's descriptor).
 * It first tries to answer a directory whole: while a directory's lines come, its files and
 * symlinks are held (stat'ed, not yet looked up) and their stats hashed into its listing key
 * (cache/keys.ts ListingKey); at the directory's own line one lookup of that key gives the
 * dircap of an unchanged directory, and its children are never asked about. Otherwise the
 * held children go on as before: each file is asked about at once — an unchanged one answered
 * there, with no job — and only work (a re-hash, an upload, a directory) becomes a job.
 *
 * A directory is not answered whole (its held children go on at once) when a child is left
 * out, has more than one link (its edge names another entry), is a subdirectory that was not
 * listable itself, or when more than HOLD_MAX children would be held: memory stays bounded
 * by HOLD_MAX × the depth of the tree. Its listing is not looked up or kept when a child
 * changed within the trust window, and not kept when a child's xattrs could not be read
 * whole (handleDir: each child then lacks its `row`).
 *
 * Every line is checked as it is read (scan/queue-shape.ts: contents before their directory,
 * names in byte order, nothing twice). An edge describes the entry as it is now, never as the
 * queue remembers it: owner and mode come from the reader's stat, and ACLs and capabilities
 * are read again for an entry changed since the walk that built the queue began (its ctime
 * says so; `ctx.metaSince`).
 *
 * The first failure that is not local to one entry (the gateway beyond its retries, the
 * cache) aborts the run's signal: the reader and the stages stop, and the run ends with it.
 */
import type { Child } from '../core/entry.js';
import type { Job, Pool } from '../core/pool.js';
import { AppError } from '../errors.js';
import { ListingKey, listingSalt } from '../cache/keys.js';
import { isDirEntry, isSymlinkEntry, parentOf, type QueueEntry } from '../scan/queue-codec.js';
import { readQueue } from '../scan/queue-file.js';
import { QueueShape } from '../scan/queue-shape.js';
import type { UploadContext } from './context.js';
import { handleDir, listedDir } from './dirs.js';
import { absPath, fileAtOnce, handleFile, handleSymlink, statEntry } from './files.js';
import type { EntryStat } from './source-stat.js';

type Task = Promise<Child | null>;

/** An entry left out (vanished, unreadable, another type now): its parent goes on without it. */
const LEFT_OUT: Task = Promise.resolve(null);

/** The most children of one directory held while it may still be answered whole. */
export const HOLD_MAX = 4096;

interface Held {
  entry: QueueEntry;
  st: EntryStat;
  link: boolean;
}

interface OpenDir {
  path: Buffer;
  children: Task[];
  /** Its listing so far; null once it cannot be answered whole. */
  listing: ListingKey | null;
  /** Files and symlinks stat'ed, not yet asked about (while `listing` is not null). */
  held: Held[];
}

class TreeAssembler {
  private readonly stack: OpenDir[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private root?: Task;
  /** What else listing keys depend on; undefined without a cache (no listings then). */
  private readonly salt?: Buffer;
  /** Only a listing whose children's ctimes are all older than this is recorded or looked up. */
  private readonly trustedBefore = BigInt(Date.now()) * 1_000_000n;

  constructor(
    private readonly ctx: UploadContext,
    private readonly queuePath: string,
    /** Ends the run with its first fatal error (aborts the one signal). */
    private readonly fail: (e: unknown) => void,
  ) {
    if (ctx.cache) this.salt = listingSalt({ xz: ctx.xz.id, policy: ctx.xz.policy, xattrs: Boolean(ctx.readXattrs) });
    this.trustedBefore -= ctx.trustNs;
  }

  async run(): Promise<Child> {
    try {
      await this.readLines();
    } catch (e) {
      this.fail(e);
    } finally {
      // Whatever happened, the jobs that started settle before the run reports.
      await Promise.allSettled([...this.inFlight]);
    }
    const signal = this.ctx.files.signal;
    if (signal.aborted) throw signal.reason;
    const root = await this.root!;
    if (!root) throw new AppError('the source directory itself could not be read in phase 2');
    return root;
  }

  private async readLines(): Promise<void> {
    const shape = new QueueShape(this.queuePath);
    for await (const { entry, lineNo } of readQueue(this.queuePath)) {
      this.ctx.files.signal.throwIfAborted();
      shape.accept(entry, lineNo);
      await this.place(entry);
    }
    shape.end();
  }

  /**
   * The entry as it is now (`st`, just stat'ed): owner and mode from the stat; ACLs and
   * capabilities read again when its ctime is not older than the walk that listed it.
   */
  private current(e: QueueEntry, st: EntryStat): void {
    e.uid = st.uid;
    e.gid = st.gid;
    if (e.mode !== null) e.mode = st.mode;
    const read = this.ctx.readMeta;
    if (read && st.ctimeNs >= this.ctx.metaSince) {
      const m = read(absPath(this.ctx, e.path), st);
      e.caps = m.caps;
      e.acls = m.acls;
    }
  }

  /** Places the entry: held for its directory's listing, answered, or submitted as a job. */
  private async place(entry: QueueEntry): Promise<void> {
    const parent = parentOf(entry.path);
    if (isDirEntry(entry)) return this.placeDir(entry, parent);
    const open = this.openFor(parent!);
    const link = isSymlinkEntry(entry);
    const st = statEntry(this.ctx, entry, link ? 'symlink' : 'file');
    if (!st) {
      if (open.listing) await this.unlist(open);
      open.children.push(LEFT_OUT);
      return;
    }
    this.current(entry, st);
    if (open.listing && (link || st.nlink === 1n)) {
      open.listing.add(link ? 'symlink' : 'file', entry, st);
      open.held.push({ entry, st, link });
      if (open.held.length >= HOLD_MAX) await this.unlist(open);
      return;
    }
    if (open.listing) await this.unlist(open);
    await this.work(open, entry, st, link);
  }

  /** A directory's line: answered by its listing, or its (held) children go on and it is a job. */
  private async placeDir(entry: QueueEntry, parent: Buffer | null): Promise<void> {
    const top = this.stack[this.stack.length - 1];
    // The shape is checked: the open directory on top, if any, is this one.
    const own = top?.path.equals(entry.path) ? this.stack.pop()! : this.opened(entry.path);
    const st = statEntry(this.ctx, entry, 'dir');
    if (st) this.current(entry, st);
    let done = LEFT_OUT;
    let listing: Buffer | undefined;
    if (st) {
      // As with a file's mtime: a change in the same clock tick as a recent ctime would not
      // show, so a listing with a child changed in the last moments is neither used nor kept.
      if (own.listing && own.listing.newest < this.trustedBefore) listing = own.listing.key(entry.path);
      const cap = listing && this.ctx.cache!.knownListing(listing);
      if (cap) done = Promise.resolve(listedDir(this.ctx, entry, st, listing!, cap, own.held));
      else {
        if (own.listing) await this.unlist(own);
        const kids = own.children;
        done = (await this.submit(this.ctx.dirs, () => handleDir(this.ctx, entry, st, kids, listing))).done;
      }
    }
    if (parent === null) {
      this.root = done;
      return;
    }
    const up = this.openFor(parent);
    if (listing && up.listing) up.listing.add('dir', entry, st!, listing);
    else if (up.listing) await this.unlist(up);
    up.children.push(done);
  }

  /** The directory cannot be answered whole: its held children go on now, and later ones at once (callers skip it once `listing` is null: no await per entry). */
  private async unlist(open: OpenDir): Promise<void> {
    open.listing = null;
    if (!open.held.length) return;
    const held = open.held;
    open.held = [];
    for (const h of held) await this.work(open, h.entry, h.st, h.link);
  }

  /** A file's or symlink's work: answered from the cache at once, or submitted as a job. */
  private async work(open: OpenDir, entry: QueueEntry, st: EntryStat, link: boolean): Promise<void> {
    // An unchanged file is answered here, from the cache, without a job; only work waits.
    const now = link ? undefined : fileAtOnce(this.ctx, entry, st);
    if (now && typeof now !== 'function') {
      open.children.push(Promise.resolve(now));
      return;
    }
    const job = await this.submit(this.ctx.files, now ?? (() => (link ? handleSymlink(this.ctx, entry, st) : handleFile(this.ctx, entry, st))));
    open.children.push(job.done);
  }

  private async submit(pool: Pool, fn: () => Task): Promise<Job<Child | null>> {
    const job = await pool.submit(fn);
    const settled = job.done.then(
      () => {},
      (e: unknown) => this.fail(e),
    );
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    return job;
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
    return { path, children: [], listing: this.salt ? new ListingKey(this.salt) : null, held: [] };
  }
}

/** Phase 2 over the queue file; `fail` aborts the run with the first fatal error. */
export function uploadQueue(ctx: UploadContext, queuePath: string, fail: (e: unknown) => void): Promise<Child> {
  return new TreeAssembler(ctx, queuePath, fail).run();
}
