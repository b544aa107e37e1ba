/**
 * Resuming a restore: with --force, a file already in place exactly as the backup says is not
 * downloaded again (a rerun of a restore that was cut off finds what it wrote); its metadata is
 * applied where it is, as for any restored file.
 *
 * "Exactly as the backup says", checked on the file itself (opened beneath DEST, never through
 * a symlink): a regular file with one link, of the listing's size, with the recorded mtime to
 * the nanosecond, owned as a restore would leave it (the recorded uid and gid when owners are
 * restored, else the restoring user), and no extended attribute the backup does not give it.
 * The mode does not count: it is applied again. Left out, and always downloaded: xz contents
 * (the listing gives the compressed size, so the size on disk cannot be checked without the
 * download), files with capabilities (they would be granted to contents nobody checked),
 * hard-link groups, and entries without a recorded mtime or size. The contents themselves are
 * not read: as with rsync's quick check, size and mtime stand for them — the restore that
 * wrote the file renamed it into place only once it was whole and its mtime was set.
 */
import { closeSync } from 'node:fs';
import type { EntryInfo } from '../browse/entry-info.js';
import { CAPABILITY, ACCESS_ACL } from '../meta/read.js';
import { applyMeta, type ApplyOptions } from './apply.js';
import type { Dest } from './dest.js';

/** An extended attribute a fresh restore of `entry` would not have (SELinux labels and the like are the system's). */
function foreign(name: string, entry: EntryInfo): boolean {
  if (name.startsWith('user.')) return !(entry.xattrs && name in entry.xattrs);
  if (name === ACCESS_ACL) return !entry.acls;
  if (name === CAPABILITY) return true;
  return name.startsWith('system.posix_acl_') || name.startsWith('trusted.');
}

/**
 * True when the file `place.name` in `place.dirfd` is already the one `entry` describes (the
 * listing gives `size`): its metadata has been applied in place and nothing is to be downloaded.
 */
export function keepInPlace(dest: Dest, place: { dirfd: number; name: Buffer }, size: number | undefined, entry: EntryInfo, shown: string, meta: ApplyOptions): boolean {
  if (entry.kind !== 'file' || entry.enc || entry.caps || entry.hardlink !== undefined || entry.mtimeNs === undefined || size === undefined) return false;
  const there = dest.existingFile(place.dirfd, place.name);
  if (!there) return false;
  const { fd, st, xattrs } = there;
  try {
    const owners = meta.owner && entry.uid !== undefined && entry.gid !== undefined;
    const owned = owners ? st.uid === BigInt(entry.uid!) && st.gid === BigInt(entry.gid!) : st.uid === BigInt(process.geteuid?.() ?? -1);
    if (st.nlink !== 1n || st.size !== BigInt(size) || st.mtimeNs !== entry.mtimeNs || !owned) return false;
    if (xattrs.some((n) => foreign(n, entry))) return false;
    applyMeta(dest.at, { fd }, shown, entry, meta);
    return true;
  } finally {
    closeSync(fd);
  }
}
