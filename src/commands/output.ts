/**
 * Output to stdout, for every command. One place writes it (`writeStdout`; `out` in common.ts
 * adds the newline), waits for each write, and types its failure:
 *
 * - the reader went away (EPIPE: `ls -R | head`, `list | true`): the command stops quietly with
 *   exit 141, what a shell reports for coreutils, which die of SIGPIPE there (Node ignores
 *   SIGPIPE, and the failed write used to be an unhandled 'error' event with a stack trace);
 * - any other failure (ENOSPC on /dev/full, EIO): one line, exit 1.
 *
 * Output of any size in bounded memory, for `ls -R` and `diff` of trees with millions of
 * entries: lines go out in batches as they are found (waiting while stdout is slow), and a
 * JSON object of lists is spooled to private temporary files and copied out at the end.
 */
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError, describeErrno, errnoCode, EXIT } from '../errors.js';

/** stdout's reader went away. Reported by nothing but the exit code (141). */
export class StdoutClosed extends AppError {
  constructor() {
    super('stdout was closed by its reader', 'stdout-closed', EXIT.STDOUT_CLOSED);
  }
}

/** stdout cannot be written (a full disk, an I/O error): one line, exit 1. */
export class StdoutError extends AppError {
  constructor(cause: unknown) {
    super(`cannot write to stdout: ${describeErrno(cause)}`, 'stdout', EXIT.FAILURE, { cause });
  }
}

let failure: StdoutClosed | StdoutError | undefined;

function typed(e: unknown): StdoutClosed | StdoutError {
  return (failure ??= errnoCode(e) === 'EPIPE' ? new StdoutClosed() : new StdoutError(e));
}

let guarded = false;

/**
 * Called first thing (once is enough): no failure of stdout or stderr is ever an unhandled
 * 'error' event, whoever wrote. A failure of stdout is kept for the next write (and for main).
 */
export function guardOutput(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on('error', typed);
  // stderr gone too (`2>&1 | head`): there is nowhere left to say anything.
  process.stderr.on('error', () => undefined);
}

/** How stdout failed, if it did. */
export function stdoutFailure(): StdoutClosed | StdoutError | undefined {
  return failure;
}

/** Writes to stdout and waits until the write is done; rejects with StdoutClosed or StdoutError. */
export function writeStdout(chunk: string | Uint8Array): Promise<void> {
  if (failure) return Promise.reject(failure);
  return new Promise((ok, fail) => {
    process.stdout.write(chunk, (e) => (e ? fail(typed(e)) : ok()));
  });
}

const BATCH = 64 * 1024;

/** Lines written `BATCH` characters at a time through `write` (which waits for the pipe). */
export class LineBatch {
  private text = '';

  constructor(private readonly write: (text: string) => Promise<void>) {}

  add(line: string): Promise<void> {
    return this.append(`${line}\n`);
  }

  /** Text as it is (no newline added). */
  async append(text: string): Promise<void> {
    this.text += text;
    if (this.text.length >= BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.text) return;
    const text = this.text;
    this.text = '';
    await this.write(text);
  }
}

/** Items of a JSON array, as `JSON.stringify(array, null, 2)` lays them out at `indent`. */
export function jsonItem(value: unknown, indent: string): string {
  return indent + JSON.stringify(value, null, 2).replace(/\n/g, `\n${indent}`);
}

interface Spooled {
  fd: number;
  path: string;
  count: number;
  pending: string;
}

/**
 * An object whose values are lists, written out exactly as `JSON.stringify(obj, null, 2)`
 * would, without holding the lists: each is spooled to a file in a private directory (0700,
 * files 0600: diff paths are the user's file names) as items arrive.
 */
export class JsonLists {
  private constructor(
    private readonly dir: string,
    private readonly lists: Map<string, Spooled>,
  ) {}

  static create(names: string[]): JsonLists {
    const dir = mkdtempSync(join(tmpdir(), 'lafs-backup-'));
    const lists = new Map<string, Spooled>();
    for (const name of names) {
      const path = join(dir, name);
      lists.set(name, { fd: openSync(path, 'wx', 0o600), path, count: 0, pending: '' });
    }
    return new JsonLists(dir, lists);
  }

  add(name: string, value: unknown): void {
    const l = this.lists.get(name)!;
    l.pending += `${l.count++ ? ',\n' : ''}${jsonItem(value, '    ')}`;
    if (l.pending.length >= BATCH) this.spill(l);
  }

  private spill(l: Spooled): void {
    if (l.pending) writeSync(l.fd, l.pending);
    l.pending = '';
  }

  /** Writes the whole object to `out` (stdout goes through writeStdout). */
  async writeTo(out: NodeJS.WritableStream): Promise<void> {
    const write =
      out === process.stdout ? writeStdout : (chunk: string | Uint8Array) => new Promise<void>((ok, fail) => void out.write(chunk, (e) => (e ? fail(e) : ok())));
    await write('{\n');
    const entries = [...this.lists];
    for (const [i, [name, l]] of entries.entries()) {
      this.spill(l);
      await write(`  ${JSON.stringify(name)}: [`);
      if (l.count) {
        await write('\n');
        for await (const chunk of createReadStream(l.path)) await write(chunk as Buffer);
        await write('\n  ]');
      } else await write(']');
      await write(i < entries.length - 1 ? ',\n' : '\n');
    }
    await write('}\n');
  }

  /** Deletes the spool files. */
  remove(): void {
    for (const l of this.lists.values()) closeSync(l.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A JSON array written as items arrive, laid out as `JSON.stringify(array, null, 2)` would. */
export class JsonArrayOut {
  private count = 0;
  private readonly batch: LineBatch;

  constructor(write: (text: string) => Promise<void>) {
    this.batch = new LineBatch(write);
  }

  add(value: unknown): Promise<void> {
    return this.batch.append(`${this.count++ ? ',' : '['}\n${jsonItem(value, '  ')}`);
  }

  async end(): Promise<void> {
    await this.batch.add(this.count ? '\n]' : '[]');
    await this.batch.flush();
  }
}

/**
 * Prints what a finished backup shows on stdout: its root cap, or the JSON summary (which holds
 * it). The backup is recorded by then (the cache's `backups` row, the result file, the lafs
 * dir), so a failed write undoes nothing and is no exception: it returns the one line to say
 * instead, with where the cap still is (the entry cache, which `list` reads), closed pipe
 * included — a cap nobody received must not pass in silence. Undefined when printed.
 */
export async function printRecorded(text: string, hasCap: boolean): Promise<string | undefined> {
  try {
    await writeStdout(text.endsWith('\n') ? text : `${text}\n`);
    return undefined;
  } catch (e) {
    if (!(e instanceof StdoutClosed) && !(e instanceof StdoutError)) throw e;
    const why = e instanceof StdoutClosed ? 'stdout was closed by its reader (EPIPE)' : e.message.replace(/^cannot write to stdout: /, '');
    if (!hasCap) return `the queue file is written, but the summary could not be written to stdout: ${why}`;
    return `the backup is recorded, but its root cap could not be written to stdout: ${why}; it is kept in the entry cache (\`lafs-backup list\` shows it)`;
  }
}
