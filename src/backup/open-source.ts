/**
 * Opening a source file in phase 2, so that nothing put in its place can hang or mislead the run.
 *
 *  - Without blocking: O_NONBLOCK makes open(2) of a FIFO (or a device) put in the file's place
 *    since it was stat'ed return at once instead of waiting for a writer — a wait no signal
 *    could end, on the main thread or in the thread pool. On a regular file it changes nothing.
 *  - Without following a symlink (O_NOFOLLOW), and beneath the source (/proc/self/fd, below).
 *  - Checked with fstat: still a regular file, and still the one phase 2 stat'ed (device and
 *    inode); anything else is that entry's failure, never read.
 *  - Bounded: the bytes read are at most the size at the stat and at the open, whichever is
 *    smaller, so a file that grows faster than it is uploaded is read to that size and no
 *    further (as GNU tar does); it is then "changed while read": uploaded as read, not cached.
 */
import { closeSync, constants, fstatSync, openSync, readlinkSync, type BigIntStats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fromSourceAsync, notBeneath, SourceError } from '../errors.js';
import type { EntryStat } from './source-stat.js';

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** What the open found: how much to read, and whether the file differs from its stat already. */
export interface Opened {
  /** The bytes to read: min(size at the stat, size at the open). */
  limit: number;
  /** Size or mtime at the open differ from the stat's: whatever is read is not what was stat'ed. */
  changed: boolean;
  size: bigint;
  mtimeNs: bigint;
}

/**
 * What an open file descriptor really is, asked of the kernel (/proc/self/fd): the file read
 * must lie beneath the source. A directory of the source swapped for a symlink between the
 * phases would otherwise have phase 2 read a file from anywhere (O_NOFOLLOW guards only the
 * last component). Without /proc the check is skipped.
 */
export function assertBeneath(root: Buffer, fd: number, shown: string): void {
  let real: Buffer;
  try {
    real = readlinkSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
  } catch {
    return;
  }
  if (real.length > root.length && real[root.length] === 0x2f && real.subarray(0, root.length).equals(root)) return;
  throw new SourceError(shown, 'ENOTBENEATH', notBeneath('readlink'));
}

function refused(shown: string, code: 'ENOTREG' | 'EREPLACED'): SourceError {
  return new SourceError(shown, code, Object.assign(new Error(code), { code, syscall: 'fstat' }));
}

/** Checks the opened descriptor against the entry's stat (see above); throws a SourceError. */
function check(root: Buffer, fd: number, shown: string, st: EntryStat, now: BigIntStats): Opened {
  if (!now.isFile()) throw refused(shown, 'ENOTREG');
  if (now.ino !== st.ino || now.dev !== st.dev) throw refused(shown, 'EREPLACED');
  assertBeneath(root, fd, shown);
  const limit = now.size < st.size ? now.size : st.size;
  return { limit: Number(limit), changed: now.size !== st.size || now.mtimeNs !== st.mtimeNs, size: now.size, mtimeNs: now.mtimeNs };
}

/** Whether the file changed after it was opened (its fstat now differs from the open's). */
export function changedSince(opened: Opened, now: BigIntStats): boolean {
  return now.size !== opened.size || now.mtimeNs !== opened.mtimeNs;
}

/** Opens a source file (beneath `root`) on the main thread (small files): never blocks. Failures are SourceErrors. */
export function openSourceSync(root: Buffer, abs: Buffer, shown: string, st: EntryStat): { fd: number; opened: Opened } {
  const fd = openSync(abs, FLAGS);
  try {
    return { fd, opened: check(root, fd, shown, st, fstatSync(fd, { bigint: true })) };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Opens a source file for streamed reads: never blocks a thread of the pool either. */
export async function openSource(root: Buffer, abs: Buffer, shown: string, st: EntryStat): Promise<{ fh: FileHandle; opened: Opened }> {
  const fh = await fromSourceAsync(shown, () => open(abs, FLAGS));
  try {
    const now = await fromSourceAsync(shown, () => fh.stat({ bigint: true }));
    return { fh, opened: check(root, fh.fd, shown, st, now) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
