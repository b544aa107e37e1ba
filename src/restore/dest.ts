/**
 * DEST, the restore's side of the filesystem: every operation happens beneath one directory
 * descriptor and follows no symlink, whatever the backup says and whatever another process
 * does meanwhile. Directories are reached with `openBeneath` (openat2 with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, from native/at.c); files are created under a temporary name in their
 * directory, filled and given their metadata through their own descriptor, then renamed into
 * place (renameat never follows the name it replaces).
 *
 * Failed system calls here become EntryError at the call: that entry is skipped with a
 * warning (exit 3), the rest of the restore goes on.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncate, openSync, readdirSync, write } from 'node:fs';
import { Writable } from 'node:stream';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../core/file-type.js';
import { describeErrno, errnoCode, onSystemError, onSystemErrorAsync } from '../errors.js';
import type { AtCalls } from '../meta/xattr.js';

/**
 * One entry cannot be restored (its contents do not decode, a name conflict in DEST): that
 * entry is skipped with a warning naming it (exit 3); the rest of the restore goes on.
 */
export class EntryError extends Error {}

const entryError = (e: Error): EntryError => new EntryError(describeErrno(e));

/** Writing into DEST failed for this entry (a failed system call there): the entry's trouble. */
export function atDest<T>(fn: () => T): T {
  return onSystemError(entryError, fn);
}

export function atDestAsync<T>(fn: () => Promise<T>): Promise<T> {
  return onSystemErrorAsync(entryError, fn);
}

const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Writes contents to `fd` (which stays open: its metadata is set through it afterwards), by
 * position, leaving every all-zero 4 KiB block as a hole: a sparse file comes back taking the
 * space it had (and a file of zeros takes none). The size is set at the end.
 */
export function fdSink(fd: number): Writable {
  let pos = 0;
  const writeAt = (buf: Buffer, at: number, done: (e?: Error | null) => void): void => {
    if (!buf.length) return done();
    write(fd, buf, 0, buf.length, at, (e, n) => (e ? done(e) : writeAt(buf.subarray(n), at + n, done)));
  };
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const start = pos;
      pos += chunk.length;
      // Runs of data between zero blocks, each written at its place.
      const runs: [number, number][] = [];
      for (let off = 0; off < chunk.length; off += BLOCK) {
        const end = Math.min(off + BLOCK, chunk.length);
        if (ZEROS.compare(chunk, off, end, 0, end - off) === 0) continue;
        const last = runs[runs.length - 1];
        if (last && last[1] === off) last[1] = end;
        else runs.push([off, end]);
      }
      const next = (i: number, e?: Error | null): void => {
        if (e || i === runs.length) return cb(e);
        writeAt(chunk.subarray(runs[i]![0], runs[i]![1]), start + runs[i]![0], (err) => next(i + 1, err));
      };
      next(0);
    },
    final(cb) {
      ftruncate(fd, pos, (e) => cb(e));
    },
  });
}

export interface DestOptions {
  /** Replace files and symlinks in the way. */
  force: boolean;
  /** Also a directory by a file (with its tree) and a file by a directory. */
  replaceTypes: boolean;
}

export class Dest {
  /** DEST, opened once; everything else is reached beneath it. */
  private readonly root: number;

  constructor(
    readonly at: AtCalls,
    dest: string,
    private readonly o: DestOptions,
  ) {
    this.root = openSync(dest, O_DIR | constants.O_NOFOLLOW);
  }

  close(): void {
    closeSync(this.root);
  }

  /** The parent directory of `rel` (relative to DEST) opened beneath DEST, and `rel`'s last name. */
  private openParent(rel: Buffer): { fd: number; name: Buffer } {
    const slash = rel.lastIndexOf(0x2f);
    const parent = slash < 0 ? Buffer.alloc(0) : rel.subarray(0, slash);
    return { fd: this.at.openBeneath(this.root, parent, O_DIR), name: rel.subarray(slash + 1) };
  }

  private tempName(): Buffer {
    return Buffer.from(`.lafs-restore-${randomBytes(6).toString('hex')}`);
  }

  /**
   * A directory to write into: made here, or an existing real directory. Anything else in the
   * way is replaced only with --force (a symlink), or --replace-type-changes (a file).
   */
  ensureDir(rel: Buffer): void {
    const p = this.openParent(rel);
    try {
      try {
        this.at.mkdirat(p.fd, p.name, 0o700);
        return;
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const type = this.at.fstatatMode(p.fd, p.name, AT_SYMLINK_NOFOLLOW) & S_IFMT;
      if (type === S_IFDIR) return;
      if (!this.o.force) throw new EntryError('it exists in DEST and is not a directory (--force replaces it)');
      // A symlink holds no data and is replaced with --force; a file only with --replace-type-changes.
      if (type !== S_IFLNK && !this.o.replaceTypes) throw new EntryError('a file is in the way of this directory in DEST; not replaced (--replace-type-changes replaces it)');
      this.at.unlinkat(p.fd, p.name, 0);
      this.at.mkdirat(p.fd, p.name, 0o700);
    } finally {
      closeSync(p.fd);
    }
  }

  /** Creates `rel` under a temporary name, lets `fill` write it and set its metadata by fd, then renames it into place. */
  async writeFile(rel: Buffer, fill: (fd: number) => Promise<void>): Promise<void> {
    const p = this.openParent(rel);
    const tmp = this.tempName();
    let fd: number | undefined;
    try {
      fd = this.at.openBeneath(p.fd, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await fill(fd);
      closeSync(fd);
      fd = undefined;
      this.replaceWith(p.fd, tmp, p.name);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      this.removeQuietly(p.fd, tmp);
      throw e;
    } finally {
      closeSync(p.fd);
    }
  }

  /** Makes `rel` a symlink to `target`; `meta` sets its owner and time through its directory. */
  symlink(rel: Buffer, target: Buffer, meta: (dirfd: number, name: Buffer) => void): void {
    this.inPlace(rel, (dirfd, tmp) => {
      this.at.symlinkat(target, dirfd, tmp);
      meta(dirfd, tmp);
    });
  }

  /** `rel` becomes another link to the restored file `target` (both relative to DEST). */
  link(target: Buffer, rel: Buffer): void {
    const from = this.openParent(target);
    try {
      this.inPlace(rel, (dirfd, tmp) => this.at.linkat(from.fd, from.name, dirfd, tmp, 0));
    } finally {
      closeSync(from.fd);
    }
  }

  /** Applies metadata to the directory `rel` through its own descriptor. */
  withDir(rel: Buffer, fn: (fd: number) => void): void {
    const fd = this.at.openBeneath(this.root, rel, O_DIR);
    try {
      fn(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Makes the entry under a temporary name with `make`, then renames it into place. */
  private inPlace(rel: Buffer, make: (dirfd: number, tmp: Buffer) => void): void {
    const p = this.openParent(rel);
    const tmp = this.tempName();
    try {
      make(p.fd, tmp);
      this.replaceWith(p.fd, tmp, p.name);
    } catch (e) {
      this.removeQuietly(p.fd, tmp);
      throw e;
    } finally {
      closeSync(p.fd);
    }
  }

  private removeQuietly(dirfd: number, name: Buffer): void {
    try {
      this.at.unlinkat(dirfd, name, 0);
    } catch {
      // not made, or already renamed into place
    }
  }

  /**
   * Renames into place within one directory (renameat replaces a file or symlink, never
   * following it). A directory in the way is never deleted by --force alone: that is a
   * conflict for this entry, unless --replace-type-changes allows replacing it (and its tree).
   */
  private replaceWith(dirfd: number, tmp: Buffer, name: Buffer): void {
    try {
      this.at.renameat(dirfd, tmp, dirfd, name);
    } catch (e) {
      if (errnoCode(e) !== 'EISDIR' && errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
      if (!this.o.replaceTypes) {
        this.removeQuietly(dirfd, tmp);
        throw new EntryError('a directory is in the way in DEST; not replaced (--replace-type-changes replaces it with its whole tree)');
      }
      this.removeTree(dirfd, name);
      this.at.renameat(dirfd, tmp, dirfd, name);
    }
  }

  /** Deletes `name` in `dirfd` and everything under it, by descriptors (no symlink followed). */
  private removeTree(dirfd: number, name: Buffer): void {
    if ((this.at.fstatatMode(dirfd, name, AT_SYMLINK_NOFOLLOW) & S_IFMT) !== S_IFDIR) {
      this.at.unlinkat(dirfd, name, 0);
      return;
    }
    const fd = this.at.openBeneath(dirfd, name, O_DIR);
    try {
      // The kernel's name for the open directory lists it; entries are reached through `fd`.
      for (const child of readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' })) this.removeTree(fd, child);
    } finally {
      closeSync(fd);
    }
    this.at.unlinkat(dirfd, name, AT_REMOVEDIR);
  }
}
