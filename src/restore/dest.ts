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
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readdirSync, writeSync, type BigIntStats } from 'node:fs';
import { Writable } from 'node:stream';
import { isRestoreTemp, RESTORE_TEMP_PREFIX } from '../browse/entry-info.js';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../core/file-type.js';
import { describeErrno, errnoCode, onSystemError, onSystemErrorAsync } from '../errors.js';
import { listXattrs } from '../meta/xattr.js';
import { LSTAT_FIELDS, type AtCalls } from '../native.js';

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
 * space it had (and a file of zeros takes none). `finish` sets the size when a hole ends it.
 *
 * The writes are synchronous, as curl's are: a write into the page cache takes microseconds,
 * and a thread-pool round trip per chunk cost more than the write (measured by bench/restore.js).
 */
export class SparseWriter {
  /** Bytes of contents so far. */
  size = 0;
  /** Where the data written so far ends. */
  private dataEnd = 0;

  constructor(private readonly fd: number) {}

  write(chunk: Buffer): void {
    const start = this.size;
    this.size += chunk.length;
    // Runs of data between zero blocks, each written at its place.
    let runStart = -1;
    for (let off = 0; off < chunk.length; off += BLOCK) {
      const end = Math.min(off + BLOCK, chunk.length);
      const zero = ZEROS.compare(chunk, off, end, 0, end - off) === 0;
      if (!zero && runStart < 0) runStart = off;
      if (zero && runStart >= 0) {
        this.writeAt(chunk.subarray(runStart, off), start + runStart);
        runStart = -1;
      }
    }
    if (runStart >= 0) this.writeAt(chunk.subarray(runStart), start + runStart);
  }

  private writeAt(buf: Buffer, at: number): void {
    for (let done = 0; done < buf.length; ) done += writeSync(this.fd, buf, done, buf.length - done, at + done);
    this.dataEnd = at + buf.length;
  }

  finish(): void {
    if (this.dataEnd !== this.size) ftruncateSync(this.fd, this.size);
  }

  /** The same, as a stream's end (for contents that come out of a decoder). */
  writable(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        try {
          this.write(chunk);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
      final: (cb) => {
        try {
          this.finish();
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
    });
  }
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
    this.removeLeftovers(this.root);
  }

  close(): void {
    closeSync(this.root);
  }

  /** DEST's own descriptor (the directory a restore's top-level entries go into). */
  get rootFd(): number {
    return this.root;
  }

  /** The parent directory of `rel` (relative to DEST) opened beneath DEST, and `rel`'s last name. */
  private openParent(rel: Buffer): { fd: number; name: Buffer } {
    const slash = rel.lastIndexOf(0x2f);
    const parent = slash < 0 ? Buffer.alloc(0) : rel.subarray(0, slash);
    return { fd: this.at.openBeneath(this.root, parent, O_DIR), name: rel.subarray(slash + 1) };
  }

  /** Temporary names: one random prefix per restore and a counter (O_EXCL refuses any clash). */
  private readonly tempPrefix = `${RESTORE_TEMP_PREFIX}${randomBytes(6).toString('hex')}-`;
  private temps = 0;

  private tempName(): Buffer {
    return Buffer.from(`${this.tempPrefix}${(this.temps++).toString(36)}`);
  }

  /**
   * The directory `name` in `dirfd`, opened to write into: made here, or an existing real
   * directory. Anything else in the way is replaced only with --force (a symlink), or
   * --replace-type-changes (a file). The caller closes the descriptor.
   */
  openDir(dirfd: number, name: Buffer): number {
    const existed = this.ensureDir(dirfd, name);
    const fd = this.at.openBeneath(dirfd, name, O_DIR);
    if (existed) this.removeLeftovers(fd);
    return fd;
  }

  /** Makes the directory; true when a directory was there already. */
  private ensureDir(dirfd: number, name: Buffer): boolean {
    try {
      this.at.mkdirat(dirfd, name, 0o700);
      return false;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const type = this.at.fstatatMode(dirfd, name, AT_SYMLINK_NOFOLLOW) & S_IFMT;
    if (type === S_IFDIR) return true;
    if (!this.o.force) throw new EntryError('it exists in DEST and is not a directory (--force replaces it)');
    // A symlink holds no data and is replaced with --force; a file only with --replace-type-changes.
    if (type !== S_IFLNK && !this.o.replaceTypes) throw new EntryError('a file is in the way of this directory in DEST; not replaced (--replace-type-changes replaces it)');
    this.at.unlinkat(dirfd, name, 0);
    this.at.mkdirat(dirfd, name, 0o700);
    return false;
  }

  /**
   * Removes what a killed restore left in the open directory `dirfd`: entries with our
   * temporary-name pattern (never a directory: we make none under such a name), by
   * descriptor. A directory that cannot be listed is left as it is.
   */
  private removeLeftovers(dirfd: number): void {
    let names: Buffer[];
    try {
      names = readdirSync(`/proc/self/fd/${dirfd}`, { encoding: 'buffer' });
    } catch {
      return;
    }
    for (const name of names) {
      if (!isRestoreTemp(name) || name.toString('latin1').startsWith(this.tempPrefix)) continue;
      this.removeQuietly(dirfd, name);
    }
  }

  /**
   * The regular file `name` in `dirfd`, when one is there: opened read-only (to set metadata
   * through; never through a symlink, never blocking on a FIFO), with its status and the names
   * of its extended attributes. Undefined when there is none, or it cannot be opened; the
   * caller closes the descriptor.
   */
  existingFile(dirfd: number, name: Buffer): { fd: number; st: BigIntStats; xattrs: string[] } | undefined {
    let fd: number;
    try {
      fd = this.at.openBeneath(dirfd, name, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new Error('not a file');
      // The names through the directory's descriptor (the kernel's name for it, then `name`,
      // not followed): then the same inode as the one opened, or nothing is trusted.
      const xattrs = listXattrs(Buffer.concat([Buffer.from(`/proc/self/fd/${dirfd}/`), name])).map((n) => n.toString('latin1'));
      const again = new BigInt64Array(LSTAT_FIELDS);
      if (this.at.lstatAt(dirfd, name, again) !== 0 || again[2] !== st.dev || again[3] !== st.ino) throw new Error('replaced meanwhile');
      return { fd, st, xattrs };
    } catch {
      closeSync(fd);
      return undefined;
    }
  }

  /**
   * Creates `name` in `dirfd` under a temporary name, lets `fill` write it and set its
   * metadata by fd, then renames it into place. (Creating and renaming stay on the main
   * thread: on ext4, four pool threads creating in one directory spent 10× the system time.)
   */
  async writeFile(dirfd: number, name: Buffer, fill: (fd: number) => Promise<void>): Promise<void> {
    const tmp = this.tempName();
    const fd = this.at.openBeneath(dirfd, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      try {
        await fill(fd);
      } finally {
        closeSync(fd);
      }
      await this.replaceWith(dirfd, tmp, name);
    } catch (e) {
      this.removeQuietly(dirfd, tmp);
      throw e;
    }
  }

  /** Makes `name` in `dirfd` a symlink to `target`; `meta` sets its owner and time through the directory. */
  symlink(dirfd: number, name: Buffer, target: Buffer, meta: (dirfd: number, name: Buffer) => void): Promise<void> {
    return this.inPlace(dirfd, name, (tmp) => {
      this.at.symlinkat(target, dirfd, tmp);
      meta(dirfd, tmp);
    });
  }

  /** `name` in `dirfd` becomes another link to the restored file `target` (relative to DEST). */
  async link(target: Buffer, dirfd: number, name: Buffer): Promise<void> {
    const from = this.openParent(target);
    try {
      await this.inPlace(dirfd, name, (tmp) => this.at.linkat(from.fd, from.name, dirfd, tmp, 0));
    } finally {
      closeSync(from.fd);
    }
  }

  /** Makes the entry under a temporary name with `make`, then renames it into place. */
  private async inPlace(dirfd: number, name: Buffer, make: (tmp: Buffer) => void): Promise<void> {
    const tmp = this.tempName();
    try {
      make(tmp);
      await this.replaceWith(dirfd, tmp, name);
    } catch (e) {
      this.removeQuietly(dirfd, tmp);
      throw e;
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
  private async replaceWith(dirfd: number, tmp: Buffer, name: Buffer): Promise<void> {
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
