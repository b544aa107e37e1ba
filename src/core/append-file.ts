/**
 * Opening a file of ours to append to it (a log file), where another local user may have
 * planted something at its path: a symlink to a file of ours (the old code followed it, then
 * chmod'ed the target to 0600), a FIFO (open would block), or a file of their own (what we
 * append would be theirs to read).
 *
 * The last path component is never followed (O_NOFOLLOW), nothing blocks (O_NONBLOCK: a FIFO
 * without a reader answers ENXIO), and what was opened is checked with fstat: a regular file
 * owned by our effective uid. A file is chmod'ed to 0600 only when this call created it.
 */
import { closeSync, constants, fchmodSync, fstatSync, openSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** What was found at the path is not a file we may append to; `reason` says why, for one line. */
export class NotOwnFile extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
const APPEND = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK;

/**
 * Opens `path` for appending, creating it (mode 0600) when missing. Throws NotOwnFile for a
 * symlink, anything but a regular file, or a file another user owns; a failed system call
 * (ENOENT for a missing directory, EACCES…) is thrown as it is.
 */
export function openOwnForAppend(path: string): { fd: number; created: boolean } {
  for (let tries = 0; ; tries++) {
    try {
      const fd = openSync(path, APPEND | O_CREAT | O_EXCL, 0o600);
      try {
        fchmodSync(fd, 0o600); // the umask may have taken bits away; ours to set, we made it
      } catch (e) {
        closeSync(fd);
        throw e;
      }
      return { fd, created: true };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    let fd: number;
    try {
      fd = openSync(path, APPEND);
    } catch (e) {
      const code = errnoCode(e);
      // Gone between the two opens (rotated away): create it after all, a few times at most.
      if (code === 'ENOENT' && tries < 3) continue;
      if (code === 'ELOOP') throw new NotOwnFile('it is a symbolic link (not followed)');
      if (code === 'ENXIO') throw new NotOwnFile('it is not a regular file (a FIFO)');
      throw e;
    }
    const st = fstatSync(fd);
    const euid = process.geteuid?.();
    const refusal = !st.isFile() ? 'it is not a regular file' : euid !== undefined && st.uid !== euid ? `it belongs to uid ${st.uid}, not to this user (uid ${euid})` : undefined;
    if (refusal) {
      closeSync(fd);
      throw new NotOwnFile(refusal);
    }
    return { fd, created: false };
  }
}
