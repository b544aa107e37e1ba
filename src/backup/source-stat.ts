/**
 * Phase 2's lstat of each queue entry, relative to a descriptor of the entry's directory.
 *
 * The directory is opened beneath the source with openat2 (RESOLVE_BENEATH, no symlink on
 * the way) and the entry stat'ed by its single name without following it: the kernel, not a
 * path check, keeps the stat inside the source even if a directory was swapped for a symlink
 * since phase 1. It is also the cheap way: an absolute path costs a lookup of every
 * component for every entry, and Node's BigIntStats some twenty BigInts and an object; here
 * the addon writes nine numbers into one reused array.
 *
 * Only the last directory's descriptor is kept: the queue lists a directory's entries together
 * (a subdirectory's contents interrupt them at most once each), so a tree costs about one open
 * per directory and never more than one descriptor, however deep.
 *
 * Without the addon, absolute-path lstat (the same answers, slower, and the later open's
 * /proc check is then what keeps reads beneath the source).
 */
import { closeSync, constants, lstatSync, openSync } from 'node:fs';
import { errnoCode, notBeneath } from '../errors.js';
import { atCalls, LSTAT_FIELDS, type AtCalls } from '../native.js';
import { statOfArray, statOfNode, type EntryStat } from '../core/entry-stat.js';
import { baseName, parentOf } from '../scan/queue-codec.js';

/** O_PATH (Linux): a descriptor that names a directory without opening it for reading. */
const O_PATH = 0o10000000;
const SLASH = Buffer.from('/');

export { EntryStat } from '../core/entry-stat.js';

export class SourceStats {
  private readonly at: AtCalls | undefined;
  private readonly out = new BigInt64Array(LSTAT_FIELDS);
  private rootFd = -1;
  private dirFd = -1;
  private dirPath: Buffer | undefined;

  constructor(
    /** The source directory, absolute. */
    private readonly root: Buffer,
    at: AtCalls | undefined = atCalls(),
  ) {
    this.at = at && typeof at.lstatAt === 'function' ? at : undefined;
  }

  /**
   * The lstat of the entry at `rel` (relative to the source; empty: the source itself), or
   * undefined when it is not there any more. Any other failure is the system call's error
   * (the caller, which names the entry, types it: no name is made for entries that are fine).
   */
  lstat(rel: Buffer): EntryStat | undefined {
    const parent = parentOf(rel);
    if (!this.at || parent === null) return this.byPath(rel);
    const dirFd = this.dir(parent);
    if (dirFd < 0) return undefined;
    const r = this.at.lstatAt(dirFd, baseName(rel), this.out);
    if (r > 0) return undefined;
    if (r < 0) return this.byPath(rel);
    return statOfArray(this.out);
  }

  /** Closes the descriptors held. */
  close(): void {
    this.closeDir();
    if (this.rootFd >= 0) closeSync(this.rootFd);
    this.rootFd = -1;
  }

  /** A descriptor of the directory `rel` beneath the source; -1 if it is not there any more. */
  private dir(rel: Buffer): number {
    if (this.dirPath?.equals(rel)) return this.dirFd;
    this.closeDir();
    if (this.rootFd < 0) this.rootFd = openSync(this.root, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    let fd = this.rootFd;
    if (rel.length) {
      try {
        fd = this.at!.openBeneath(this.rootFd, rel, O_PATH | constants.O_DIRECTORY);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT' || code === 'ENOTDIR') return -1;
        // openat2 refuses a symlink on the way (ELOOP) or a way out (EXDEV): a directory was
        // replaced since the queue was built. Nothing is stat'ed, opened or read through it.
        if (code === 'ELOOP' || code === 'EXDEV') throw notBeneath('openat2');
        throw e;
      }
    }
    this.dirFd = fd;
    this.dirPath = Buffer.from(rel);
    return fd;
  }

  private closeDir(): void {
    if (this.dirFd >= 0 && this.dirFd !== this.rootFd) closeSync(this.dirFd);
    this.dirFd = -1;
    this.dirPath = undefined;
  }

  private byPath(rel: Buffer): EntryStat | undefined {
    const abs = rel.length ? Buffer.concat([this.root, SLASH, rel]) : this.root;
    const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    return st && statOfNode(st);
  }
}

