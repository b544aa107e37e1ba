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
 * The reader stats each entry itself (SourceStats: relative to its directory's descriptor)
 * and asks the cache about each file at once: an unchanged file is answered there, with no
 * job, so a run over an unchanged tree costs a stat and a lookup per file. Only work — a
 * re-hash, an upload, a directory — becomes a job.
 *
 * The first failure that is not local to one entry (the gateway beyond its retries, the
 * cache) aborts the run's signal: the reader and the stages stop, and the run ends with it.
 */
import type { Child } from '../core/entry.js';
import type { Job, Pool } from '../core/pool.js';
import { AppError } from '../errors.js';
import { encodePath, isDirEntry, isSymlinkEntry, parentOf, type QueueEntry } from '../scan/queue-codec.js';
import { QueueFileError, readQueue } from '../scan/queue-file.js';
import type { UploadContext } from './context.js';
import { handleDir } from './dirs.js';
import { fileAtOnce, handleFile, handleSymlink, statEntry } from './files.js';

type Task = Promise<Child | null>;

/** An entry left out (vanished, unreadable, another type now): its parent goes on without it. */
const LEFT_OUT: Task = Promise.resolve(null);

interface OpenDir {
  path: Buffer;
  children: Task[];
}

/** `a` is `b` or one of its ancestors (the empty path is the root). */
function contains(a: Buffer, b: Buffer): boolean {
  if (a.length === 0) return true;
  return b.length >= a.length && b.subarray(0, a.length).equals(a) && (b.length === a.length || b[a.length] === 0x2f);
}

class TreeAssembler {
  private readonly stack: OpenDir[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private root?: Task;

  constructor(
    private readonly ctx: UploadContext,
    private readonly queuePath: string,
    /** Ends the run with its first fatal error (aborts the one signal). */
    private readonly fail: (e: unknown) => void,
  ) {}

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

  private where(lineNo?: number): string {
    return lineNo === undefined ? this.queuePath : `${this.queuePath}:${lineNo}`;
  }

  private async readLines(): Promise<void> {
    for await (const { entry, lineNo } of readQueue(this.queuePath)) {
      this.ctx.files.signal.throwIfAborted();
      if (this.root) throw new QueueFileError(`${this.where(lineNo)}: lines after the root line`);
      await this.place(entry, lineNo);
    }
    if (!this.root) throw new QueueFileError(`${this.where()}: no root line (the last line, with an empty path): the queue file is truncated`);
    if (this.stack.length) throw this.misplaced(this.stack[this.stack.length - 1]!.path);
  }

  private misplaced(path: Buffer, lineNo?: number): QueueFileError {
    return new QueueFileError(`${this.where(lineNo)}: the directory line of ${JSON.stringify(encodePath(path))} is missing or out of place (a directory's line must follow its contents)`);
  }

  /** Submits the entry's job to its stage (waiting for room) and hands it to its parent. */
  private async place(entry: QueueEntry, lineNo: number): Promise<void> {
    const parent = parentOf(entry.path);
    let done: Task;
    if (isDirEntry(entry)) {
      const top = this.stack[this.stack.length - 1];
      let own: Task[] = [];
      if (top && top.path.equals(entry.path)) own = this.stack.pop()!.children;
      else if (top && contains(entry.path, top.path)) throw this.misplaced(top.path, lineNo);
      const st = statEntry(this.ctx, entry, 'dir');
      done = st ? (await this.submit(this.ctx.dirs, () => handleDir(this.ctx, entry, st, own))).done : LEFT_OUT;
    } else if (parent === null) {
      throw new QueueFileError(`${this.where(lineNo)}: the root entry must be a directory`);
    } else {
      const open = this.openFor(parent, lineNo);
      const link = isSymlinkEntry(entry);
      const st = statEntry(this.ctx, entry, link ? 'symlink' : 'file');
      if (!st) {
        open.children.push(LEFT_OUT);
        return;
      }
      // An unchanged file is answered here, from the cache, without a job; only work waits.
      const now = link ? undefined : fileAtOnce(this.ctx, entry, st);
      if (now && typeof now !== 'function') {
        open.children.push(Promise.resolve(now));
        return;
      }
      const job = await this.submit(this.ctx.files, now ?? (() => (link ? handleSymlink(this.ctx, entry, st) : handleFile(this.ctx, entry, st))));
      open.children.push(job.done);
      return;
    }
    if (parent === null) this.root = done;
    else this.openFor(parent, lineNo).children.push(done);
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
  private openFor(parent: Buffer, lineNo: number): OpenDir {
    const top = this.stack[this.stack.length - 1];
    if (top?.path.equals(parent)) return top;
    if (top && !contains(top.path, parent)) throw this.misplaced(top.path, lineNo);
    const opened = { path: parent, children: [] };
    this.stack.push(opened);
    return opened;
  }
}

/** Phase 2 over the queue file; `fail` aborts the run with the first fatal error. */
export function uploadQueue(ctx: UploadContext, queuePath: string, fail: (e: unknown) => void): Promise<Child> {
  return new TreeAssembler(ctx, queuePath, fail).run();
}
