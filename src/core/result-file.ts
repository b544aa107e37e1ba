/**
 * The result file (`destination.result.append_to_file`): `backup` appends a line, `cleanup`
 * rewrites it without the lines of forgotten backups, both under its lock (core/file-lock.ts).
 *
 * The file holds caps and usually lives where the tool runs as root, so it is opened without
 * following a symlink (O_NOFOLLOW: another user's link to /etc/… is refused by the kernel, not
 * followed) and only when it is a regular file of ours (fstat of what was opened, so there is
 * no window between the check and the use). Its mode is set only on a file this call created;
 * a file of ours that others can read is said, never changed behind the user's back.
 *
 * A rewrite goes to FILE.tmp-PID (created exclusively, never through a link) and is renamed
 * over FILE. A rewrite killed on the way leaves that file, holding caps; whoever takes the lock
 * next removes such leftovers (the lock means none of them is being written).
 */
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AppError, describeErrno, errnoCode } from '../errors.js';
import { writeFullySync } from '../fsutil.js';
import { log } from '../log.js';
import { withFileLock } from './file-lock.js';
import { NotOwnFile, openOwnFile, type OwnFile } from './own-file.js';

const KEY = 'destination.result.append_to_file';
const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;
/** A result file grows by one line (~200 bytes) a backup; this is some hundred thousand backups. */
export const MAX_RESULT_FILE = 64 << 20;

const euid = (): number => process.geteuid?.() ?? -1;

/** The one-line failure for `file`. */
function fail(file: string, what: string, e?: unknown): AppError {
  return new AppError(`${KEY}: ${what} ${file}${e === undefined ? '' : `: ${errnoCode(e) === 'ELOOP' ? 'it is a symbolic link; refusing to follow it' : describeErrno(e)}`}`);
}

/**
 * Opens `file` as a file of ours (core/own-file.ts: no symlink followed, no FIFO blocked on, a
 * regular file owned by this user). `create`: created 0600 if missing. Undefined when it does
 * not exist and `create` is false. A file of ours others may read is said, not chmod'ed.
 */
function openOwn(file: string, flags: number, create: boolean): number | undefined {
  let own: OwnFile | undefined;
  try {
    own = openOwnFile(file, flags, create);
  } catch (e) {
    if (e instanceof NotOwnFile) {
      if (e.kind === 'symlink') throw new AppError(`${KEY}: cannot open ${file}: it is a symbolic link; refusing to follow it`);
      if (e.kind === 'foreign') throw new AppError(`${KEY}: ${file} belongs to another user (uid ${e.uid}); refusing to use it`);
      throw new AppError(`${KEY}: ${file} is not a regular file; refusing to use it`);
    }
    throw fail(file, 'cannot open', e);
  }
  if (own && !own.created && own.st.mode & 0o077) log.warn(`${KEY}: ${file} holds caps and others may read it (mode ${(own.st.mode & 0o777).toString(8)}); chmod 600 it`);
  return own?.fd;
}

/** Removes FILE.tmp-PID files of ours that a killed rewrite left (called under the lock). */
function removeLeftovers(file: string): void {
  const prefix = `${basename(file)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(file));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix) || !/^\d+$/.test(n.slice(prefix.length))) continue;
    const path = join(dirname(file), n);
    try {
      const st = lstatSync(path);
      if (st.uid !== euid() || !(st.isFile() || st.isSymbolicLink())) continue;
      unlinkSync(path);
      log.info(`${KEY}: removed ${path}, left by a rewrite that did not finish`);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') log.warn(`${KEY}: cannot remove ${path}, left by a rewrite that did not finish: ${describeErrno(e)}`);
    }
  }
}

/** Appends `line` to the result file (created 0600 if missing), under its lock. */
export async function appendResultLine(file: string, line: string): Promise<void> {
  await withFileLock(file, () => {
    removeLeftovers(file);
    const fd = openOwn(file, O_WRONLY | O_APPEND, true)!;
    try {
      writeFullySync(fd, line);
    } catch (e) {
      throw fail(file, 'cannot write', e);
    } finally {
      closeSync(fd);
    }
  });
}

/** Reads the whole result file (at most MAX_RESULT_FILE bytes); '' when it does not exist. */
function readOwn(file: string): string {
  const fd = openOwn(file, O_RDONLY, false);
  if (fd === undefined) return '';
  try {
    const buf = Buffer.alloc(Math.min(fstatSync(fd).size + 1, MAX_RESULT_FILE + 1));
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > MAX_RESULT_FILE) throw new AppError(`${KEY}: ${file} is larger than ${MAX_RESULT_FILE} bytes; refusing to rewrite it`);
    return buf.subarray(0, n).toString('utf8');
  } catch (e) {
    throw e instanceof AppError ? e : fail(file, 'cannot read', e);
  } finally {
    closeSync(fd);
  }
}

/**
 * Rewrites the result file without the lines `drop` picks (atomically: a new file renamed over
 * it), under its lock; returns how many lines went.
 */
export async function pruneResultLines(file: string, drop: (line: string) => boolean): Promise<number> {
  return withFileLock(file, () => {
    removeLeftovers(file);
    const lines = readOwn(file).split('\n');
    const kept = lines.filter((l) => !drop(l));
    const removed = lines.length - kept.length;
    if (!removed) return 0;
    const tmp = `${file}.tmp-${process.pid}`;
    let fd: number;
    try {
      fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (e) {
      throw fail(tmp, 'cannot create', e);
    }
    try {
      try {
        fchmodSync(fd, 0o600);
        writeFullySync(fd, kept.join('\n'));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // gone already
      }
      throw fail(file, 'cannot rewrite', e);
    }
    return removed;
  });
}
