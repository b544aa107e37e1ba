/**
 * Phase 2: reads the queue as a stream and turns it into a tree of caps, bottom-up.
 *
 * Each line becomes a task (file, symlink or directory); a directory's task waits for the
 * tasks of its children, which all came before it. Open directories are a stack (the queue
 * lists each subtree contiguously), so memory is bounded by the tree's depth and the width of
 * the directories being assembled, never by the number of lines. Uploads go through a limiter
 * (`operation.concurrency`), and the reader pauses while too many tasks are unfinished.
 *
 * The first failure that is not local to one entry (the gateway, after its retries) stops the
 * run: nothing new starts, what is in flight settles (and is cached), and the error is thrown.
 */
import { AppError, EXIT } from '../errors.js';
import { encodePath, isDirEntry, isSymlinkEntry, parentOf, type QueueEntry } from '../scan/queue-codec.js';
import { QueueFileError, readQueue } from '../scan/queue-file.js';
import type { ChildResult, UploadContext } from './context.js';
import { handleDir } from './dirs.js';
import { handleFile, handleSymlink } from './files.js';

type Task = Promise<ChildResult | null>;

interface OpenDir {
  path: Buffer;
  children: Task[];
}

/** `a` is `b` or one of its ancestors (the empty path is the root). */
function contains(a: Buffer, b: Buffer): boolean {
  if (a.length === 0) return true;
  return b.length >= a.length && b.subarray(0, a.length).equals(a) && (b.length === a.length || b[a.length] === 0x2f);
}

/** The run stopped on request (a signal) before the root was done. */
export class StoppedError extends AppError {
  constructor() {
    super('stopped', 'stopped', EXIT.FAILURE);
  }
}

class TreeAssembler {
  private readonly stack: OpenDir[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxPending: number;
  private fatal: unknown;
  private root?: Task;
  private wake?: () => void;

  constructor(
    private readonly ctx: UploadContext,
    private readonly queuePath: string,
  ) {
    this.maxPending = ctx.limiter.n * 16;
  }

  async run(): Promise<ChildResult> {
    try {
      await this.readLines();
    } finally {
      // Whatever happened, what already started finishes (and is cached) first.
      await Promise.allSettled([...this.inFlight]);
    }
    if (this.fatal) throw this.fatal;
    if (this.ctx.stopping()) throw new StoppedError();
    const root = await this.root!;
    if (!root) throw new AppError('the source directory itself could not be read in phase 2');
    return root;
  }

  private where(lineNo?: number): string {
    return lineNo === undefined ? this.queuePath : `${this.queuePath}:${lineNo}`;
  }

  private async readLines(): Promise<void> {
    for await (const { entry, lineNo } of readQueue(this.queuePath)) {
      if (this.fatal || this.ctx.stopping()) return;
      if (this.root) throw new QueueFileError(`${this.where(lineNo)}: lines after the root line`);
      this.place(entry, lineNo);
      while (this.inFlight.size > this.maxPending && !this.fatal) await new Promise<void>((ok) => (this.wake = ok));
    }
    if (!this.root) throw new QueueFileError(`${this.where()}: no root line (the last line, with an empty path): the queue file is truncated`);
    if (this.stack.length) throw this.misplaced(this.stack[this.stack.length - 1]!.path);
  }

  private misplaced(path: Buffer, lineNo?: number): QueueFileError {
    return new QueueFileError(`${this.where(lineNo)}: the directory line of ${JSON.stringify(encodePath(path))} is missing or out of place (a directory's line must follow its contents)`);
  }

  /** Makes the entry's task and hands it to its parent's open directory. */
  private place(entry: QueueEntry, lineNo: number): void {
    const parent = parentOf(entry.path);
    let task: Task;
    if (isDirEntry(entry)) {
      const top = this.stack[this.stack.length - 1];
      let own: Task[] = [];
      if (top && top.path.equals(entry.path)) own = this.stack.pop()!.children;
      else if (top && contains(entry.path, top.path)) throw this.misplaced(top.path, lineNo);
      task = handleDir(this.ctx, entry, own);
    } else if (parent === null) {
      throw new QueueFileError(`${this.where(lineNo)}: the root entry must be a directory`);
    } else {
      task = isSymlinkEntry(entry) ? handleSymlink(this.ctx, entry) : handleFile(this.ctx, entry);
    }
    if (parent === null) this.root = task;
    else this.openFor(parent, lineNo).children.push(task);
    this.track(task);
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

  private track(task: Task): void {
    const settled = task.then(
      () => {},
      (e: unknown) => {
        this.fatal ??= e;
      },
    );
    this.inFlight.add(settled);
    void settled.finally(() => {
      this.inFlight.delete(settled);
      this.wake?.();
    });
  }
}

export function uploadQueue(ctx: UploadContext, queuePath: string): Promise<ChildResult> {
  return new TreeAssembler(ctx, queuePath).run();
}
