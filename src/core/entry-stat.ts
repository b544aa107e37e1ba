/**
 * What the backup needs of an entry's lstat: nine numbers, filled by the addon's fstatat into
 * one reused array (native/at.c lstatAt), or taken from Node's BigIntStats without it. Both
 * phases use it: phase 1's walk and phase 2's reader stat each entry this way.
 */
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from './file-type.js';

export class EntryStat {
  constructor(
    readonly mode: number,
    readonly nlink: bigint,
    readonly dev: bigint,
    readonly ino: bigint,
    readonly size: bigint,
    readonly mtimeNs: bigint,
    readonly ctimeNs: bigint,
    readonly uid: number,
    readonly gid: number,
  ) {}
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
}

/**
 * The stat the addon wrote as nine int64s at `o[at…]` — mode, nlink, dev, ino, size, mtime ns,
 * ctime ns, uid, gid: lstatAt's reused array, or a record of scan.c's directory scan (dev and
 * ino are unsigned in the kernel).
 */
export function statOfArray(o: BigInt64Array, at = 0): EntryStat {
  return new EntryStat(Number(o[at]), o[at + 1]!, BigInt.asUintN(64, o[at + 2]!), BigInt.asUintN(64, o[at + 3]!), o[at + 4]!, o[at + 5]!, o[at + 6]!, Number(o[at + 7]), Number(o[at + 8]));
}

/** The stat Node gave. */
export function statOfNode(st: { mode: bigint; nlink: bigint; dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint; uid: bigint; gid: bigint }): EntryStat {
  return new EntryStat(Number(st.mode), st.nlink, st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, Number(st.uid), Number(st.gid));
}
