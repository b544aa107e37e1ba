/**
 * The shape a queue must have, checked line by line in one pass with memory bounded by the
 * tree's depth: a directory's line follows its contents (each subtree is contiguous), the
 * entries of one directory come in strictly increasing byte order of their names — so no
 * entry, and no directory's block, is listed twice — and the root (the empty path, a
 * directory) comes last. Phase 2 checks every line as it reads it; a queue this run did not
 * build is checked whole before anything is uploaded.
 */
import { encodePath, isDirEntry, type QueueEntry } from './queue-codec.js';
import { QueueFileError } from './queue-file.js';

interface Open {
  path: Buffer;
  /** The last entry seen in this directory: its path, and where its name starts. */
  last?: Buffer;
  lastStart: number;
}

/** `a` is `b` or one of its ancestors (the empty path is the root). */
export function contains(a: Buffer, b: Buffer): boolean {
  if (a.length === 0) return true;
  return b.length >= a.length && b.subarray(0, a.length).equals(a) && (b.length === a.length || b[a.length] === 0x2f);
}

export class QueueShape {
  private readonly stack: Open[] = [];
  private rootSeen = false;

  constructor(private readonly file: string) {}

  /** Checks the next line's entry; throws a QueueFileError naming `file:lineNo`. Allocates nothing per entry. */
  accept(e: QueueEntry, lineNo: number): void {
    if (this.rootSeen) throw new QueueFileError(`${this.file}:${lineNo}: lines after the root line`);
    const path = e.path;
    if (isDirEntry(e)) {
      const top = this.stack[this.stack.length - 1];
      if (top?.path.equals(path)) this.stack.pop();
      else if (top && contains(path, top.path)) throw this.misplaced(top.path, lineNo);
      if (path.length === 0) {
        if (this.stack.length) throw this.misplaced(this.stack[this.stack.length - 1]!.path, lineNo);
        this.rootSeen = true;
        return;
      }
    } else if (path.length === 0) throw new QueueFileError(`${this.file}:${lineNo}: the root entry must be a directory`);
    const slash = path.lastIndexOf(0x2f);
    const parentLength = slash < 0 ? 0 : slash;
    let open = this.stack[this.stack.length - 1];
    if (!open || open.path.length !== parentLength || path.compare(open.path, 0, parentLength, 0, parentLength) !== 0) open = this.openFor(path.subarray(0, parentLength), lineNo);
    const start = slash + 1;
    if (open.last) {
      const order = path.compare(open.last, open.lastStart, open.last.length, start, path.length);
      if (order === 0) throw new QueueFileError(`${this.file}:${lineNo}: ${JSON.stringify(encodePath(path))} is listed twice`);
      if (order < 0) throw new QueueFileError(`${this.file}:${lineNo}: ${JSON.stringify(encodePath(path))} is out of order (the entries of a directory are listed in byte order of their names)`);
    }
    open.last = path;
    open.lastStart = start;
  }

  /** The end of the file: the root line must have come. */
  end(): void {
    if (!this.rootSeen) throw new QueueFileError(`${this.file}: no root line (the last line, with an empty path): the queue file is truncated`);
  }

  private openFor(parent: Buffer, lineNo: number): Open {
    const top = this.stack[this.stack.length - 1];
    if (top && !contains(top.path, parent)) throw this.misplaced(top.path, lineNo);
    const opened: Open = { path: parent, lastStart: 0 };
    this.stack.push(opened);
    return opened;
  }

  private misplaced(path: Buffer, lineNo: number): QueueFileError {
    return new QueueFileError(`${this.file}:${lineNo}: the directory line of ${JSON.stringify(encodePath(path))} is missing or out of place (a directory's line must follow its contents)`);
  }
}
