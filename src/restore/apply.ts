/**
 * Putting an entry's metadata back on disk, through descriptors: owner (as root, unless told
 * not to), mode, POSIX ACLs, file capabilities (after chown, which clears them), user xattrs,
 * and the mtime last, to the nanosecond. A file that does not end up owned as the backup says
 * (--no-owner, not run as root, or chown failed) gets neither its setuid/setgid bits nor its
 * file capabilities, as GNU tar and cp do: they would be privileges for whoever owns it now. Files and directories are reached by an open fd
 * (fchown, fchmod, fsetxattr, futimens); a symlink by its parent directory's fd and its name
 * (fchownat, utimensat with AT_SYMLINK_NOFOLLOW). What cannot be applied is reported with the
 * path and counted; the restore goes on.
 */
import { fchmodSync, fchownSync, fstatSync } from 'node:fs';
import type { EntryInfo } from '../browse/entry-info.js';
import { describeErrno } from '../errors.js';
import { log } from '../log.js';
import { textToAcls } from '../meta/acl.js';
import { encodeCaps, textToCaps } from '../meta/capability.js';
import { ACCESS_ACL, CAPABILITY, DEFAULT_ACL } from '../meta/read.js';
import type { AtCalls } from '../native.js';

export interface ApplyOptions {
  owner: boolean;
  onTrouble: () => void;
  /** A file's setuid/setgid bits or capabilities were left off: it is not owned as the backup says. */
  onPrivilegeDropped?: (shown: string) => void;
}

const SETID = 0o6000;

/** The open file is owned by the uid and gid the backup gives it. */
function ownedAsRecorded(fd: number, info: EntryInfo): boolean {
  if (info.uid === undefined || info.gid === undefined) return false;
  try {
    const st = fstatSync(fd);
    return st.uid === info.uid && st.gid === info.gid;
  } catch {
    return false;
  }
}

/** Where the metadata goes: an open file or directory, or a symlink named in a directory. */
export type Target = { fd: number } | { dirfd: number; name: Buffer };

const AT_SYMLINK_NOFOLLOW = 0x100;
const NS = 1_000_000_000n;

function attempt(path: string, what: string, o: ApplyOptions, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    o.onTrouble();
    log.warn(`cannot set the ${what} of ${JSON.stringify(path)}: ${describeErrno(e)}`);
  }
}

/** Applies `info` to `target` (named `shown` in messages). */
export function applyMeta(at: AtCalls, target: Target, shown: string, info: EntryInfo, o: ApplyOptions): void {
  const owner = o.owner && info.uid !== undefined && info.gid !== undefined;
  if ('name' in target) {
    if (owner) attempt(shown, 'owner', o, () => at.fchownat(target.dirfd, target.name, info.uid!, info.gid!, AT_SYMLINK_NOFOLLOW));
  } else {
    const fd = target.fd;
    if (owner) attempt(shown, 'owner', o, () => fchownSync(fd, info.uid!, info.gid!));
    let mode = info.mode;
    let caps = info.kind === 'file' ? info.caps : undefined;
    // Privileges only for the owner they were given to (checked after chown, on the file itself).
    if (info.kind === 'file' && (((mode ?? 0) & SETID) !== 0 || caps) && !ownedAsRecorded(fd, info)) {
      if (mode !== undefined) mode &= ~SETID;
      caps = undefined;
      o.onPrivilegeDropped?.(shown);
    }
    if (mode !== undefined) attempt(shown, 'mode', o, () => fchmodSync(fd, mode!));
    if (info.acls) {
      attempt(shown, 'ACL', o, () => {
        const acls = textToAcls(info.acls!);
        if (acls.access) at.fsetxattr(fd, ACCESS_ACL, acls.access, 0);
        if (acls.default && info.kind === 'dir') at.fsetxattr(fd, DEFAULT_ACL, acls.default, 0);
      });
    }
    if (caps) attempt(shown, 'capabilities', o, () => at.fsetxattr(fd, CAPABILITY, encodeCaps(textToCaps(caps!)), 0));
    for (const [name, value] of Object.entries(info.xattrs ?? {})) attempt(shown, name, o, () => at.fsetxattr(fd, name, Buffer.from(value, 'base64'), 0));
  }
  if (info.mtimeNs !== undefined) {
    // Seconds by floor division, nanoseconds the non-negative rest: exact, before 1970 too.
    let sec = info.mtimeNs / NS;
    let nsec = info.mtimeNs % NS;
    if (nsec < 0n) {
      sec -= 1n;
      nsec += NS;
    }
    attempt(shown, 'mtime', o, () => {
      if ('name' in target) at.utimensat(target.dirfd, target.name, sec, Number(nsec), AT_SYMLINK_NOFOLLOW);
      else at.utimensat(target.fd, null, sec, Number(nsec), 0);
    });
  }
}
