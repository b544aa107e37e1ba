/**
 * Opening a file of ours where another local user may have planted something at its path
 * (the log file, the result file): a symlink to a file of ours (the old code followed it, then
 * chmod'ed the target to 0600), a FIFO (open would block), or a file of their own (what we
 * write would be theirs to read).
 *
 * The last path component is never followed (O_NOFOLLOW), nothing blocks (O_NONBLOCK: a FIFO
 * without a reader answers ENXIO), and what was opened is checked with fstat: a regular file
 * owned by our effective uid. A file is chmod'ed to 0600 only when this call created it.
 */
import { closeSync, constants, fchmodSync, fstatSync, openSync, type Stats } from 'node:fs';
import { errnoCode } from '../errors.js';

/** What was found at the path is not a file of ours: which kind of thing, and `reason` in words. */
export class NotOwnFile extends Error {
  constructor(
    readonly kind: 'symlink' | 'not-regular' | 'foreign',
    readonly reason: string,
    /** The owner, for 'foreign'. */
    readonly uid?: number,
  ) {
    super(reason);
  }
}

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

export interface OwnFile {
  fd: number;
  /** This call created it (mode 0600); an existing file keeps the mode its owner gave it. */
  created: boolean;
  st: Stats;
}

/**
 * Opens `path` with `flags` (plus O_NOFOLLOW | O_NONBLOCK); with `create`, makes it (mode 0600)
 * when missing. Throws NotOwnFile for a symlink, anything but a regular file, or a file another
 * user owns; a failed system call (ENOENT for a missing directory, EACCES…) is thrown as it
 * is. Without `create`, a missing file is undefined.
 */
export function openOwnFile(path: string, flags: number, create: boolean): OwnFile | undefined {
  const safe = flags | O_NOFOLLOW | O_NONBLOCK;
  for (let tries = 0; ; tries++) {
    if (create) {
      try {
        const fd = openSync(path, safe | O_CREAT | O_EXCL, 0o600);
        try {
          fchmodSync(fd, 0o600); // the umask may have taken bits away; ours to set, we made it
          return { fd, created: true, st: fstatSync(fd) };
        } catch (e) {
          closeSync(fd);
          throw e;
        }
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
    }
    let fd: number;
    try {
      fd = openSync(path, safe);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT' && !create) return undefined;
      // Gone between the two opens (rotated away): create it after all, a few times at most.
      if (code === 'ENOENT' && tries < 3) continue;
      if (code === 'ELOOP') throw new NotOwnFile('symlink', 'it is a symbolic link (not followed)');
      if (code === 'ENXIO') throw new NotOwnFile('not-regular', 'it is not a regular file (a FIFO)');
      throw e;
    }
    const st = fstatSync(fd);
    const euid = process.geteuid?.();
    const refusal = !st.isFile()
      ? new NotOwnFile('not-regular', 'it is not a regular file')
      : euid !== undefined && st.uid !== euid
        ? new NotOwnFile('foreign', `it belongs to uid ${st.uid}, not to this user (uid ${euid})`, st.uid)
        : undefined;
    if (refusal) {
      closeSync(fd);
      throw refusal;
    }
    return { fd, created: false, st };
  }
}

/** openOwnFile for appending (a log file), created when missing. */
export function openOwnForAppend(path: string): OwnFile {
  return openOwnFile(path, O_WRONLY | O_APPEND, true)!;
}
