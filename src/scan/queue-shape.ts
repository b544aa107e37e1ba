/**
 * The shape a queue must have, checked line by line in one pass with memory bounded by the
 * tree's depth: a directory's line follows its contents (each subtree is contiguous), the
 * entries of one directory come in strictly increasing byte order of their names — so no
 * entry, and no directory's block, is listed twice — and the root (the empty path, a
 * directory) comes last. Phase 2 checks every line as it reads it; a queue this run did not
 * build is checked whole before anything is uploaded.
 */
import { baseName, encodePath, isDirEntry, parentOf, type QueueEntry } from './queue-codec.js';
import { QueueFileError } from './queue-file.js';

interface Open {
  path: Buffer;
  /** The name of the last entry seen in this directory. */
  last?: Buffer;
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

  /** Checks the next line's entry; throws a QueueFileError naming `file:lineNo`. */
  accept(e: QueueEntry, lineNo: number): void {
    const at = `${this.file}:${lineNo}`;
    if (this.rootSeen) throw new QueueFileError(`${at}: lines after the root line`);
    const parent = parentOf(e.path);
    if (isDirEntry(e)) {
      const top = this.stack[this.stack.length - 1];
      if (top?.path.equals(e.path)) this.stack.pop();
      else if (top && contains(e.path, top.path)) throw this.misplaced(top.path, at);
      if (parent === null) {
        if (this.stack.length) throw this.misplaced(this.stack[this.stack.length - 1]!.path, at);
        this.rootSeen = true;
        return;
      }
    } else if (parent === null) throw new QueueFileError(`${at}: the root entry must be a directory`);
    const open = this.openFor(parent!, at);
    const name = baseName(e.path);
    if (open.last) {
      const order = Buffer.compare(name, open.last);
      if (order === 0) throw new QueueFileError(`${at}: ${JSON.stringify(encodePath(e.path))} is listed twice`);
      if (order < 0) throw new QueueFileError(`${at}: ${JSON.stringify(encodePath(e.path))} is out of order (the entries of a directory are listed in byte order of their names)`);
    }
    open.last = name;
  }

  /** The end of the file: the root line must have come. */
  end(): void {
    if (!this.rootSeen) throw new QueueFileError(`${this.file}: no root line (the last line, with an empty path): the queue file is truncated`);
  }

  private openFor(parent: Buffer, at: string): Open {
    const top = this.stack[this.stack.length - 1];
    if (top?.path.equals(parent)) return top;
    if (top && !contains(top.path, parent)) throw this.misplaced(top.path, at);
    const opened: Open = { path: parent };
    this.stack.push(opened);
    return opened;
  }

  private misplaced(path: Buffer, at: string): QueueFileError {
    return new QueueFileError(`${at}: the directory line of ${JSON.stringify(encodePath(path))} is missing or out of place (a directory's line must follow its contents)`);
  }
}
