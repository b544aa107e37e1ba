/**
 * One directory as phase 1's walk reads it: its entries sorted by name bytes, each with what
 * readdir said of its type and, when the addon took them in the same call (native/scan.c), its
 * lstat and the names of its extended attributes. Per entry, a call from JavaScript per system
 * call cost several times the calls themselves; one call per directory brings the walk to
 * `find`'s cost.
 *
 * Without the addon, or for a directory of more than MAX_SCANNED entries (whose records would
 * cost memory beyond the names), the entries come from Node's readdir with neither: the walk
 * takes each lstat and attribute list itself, as it did before this existed. Both ways give the
 * same entries in the same order (a test compares the queues they make).
 */
import { readdirSync } from 'node:fs';
import { statOfArray, type EntryStat } from '../core/entry-stat.js';
import { errnoError } from '../errors.js';
import type { ScanCalls } from '../native.js';

/** readdir's d_type values (dirent.h). */
export const DT = { UNKNOWN: 0, FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

/** Entries of one directory stat'ed in one call at most; a bigger one is listed the slow way. */
export const MAX_SCANNED = 65_536;

export interface ScanEntry {
  name: Buffer;
  /** DT: what readdir said (UNKNOWN when it could not tell). */
  type: number;
  /** The lstat taken with the listing; undefined when not taken (the walk takes it). */
  stat?: EntryStat;
  /** The errno of an lstat that failed with the listing. */
  statErrno?: number;
  /**
   * The names of its extended attributes listed with it, NUL-separated as llistxattr gives them
   * (empty: none); a negative errno when listing failed; undefined when not listed.
   */
  attrs?: Buffer | number;
}

export interface DirScan {
  readonly count: number;
  /**
   * Every entry was stat'ed, every one but a symlink had its attribute names listed (or given as
   * none by `unchangedBefore`), and none has an ACL or a capability (the attribute memo keeps
   * such directories: attr-memo.ts).
   */
  readonly clean: boolean;
  /** The next entry, in name-byte order; undefined after the last. */
  next(): ScanEntry | undefined;
  /** All names (for the marker files of exclude_if_present). */
  names(): Buffer[];
}

export interface ScanOptions {
  /** List each entry's attribute names too (extended metadata is kept). */
  attrs: boolean;
  /** Entries whose ctime is older (ns) are given as having no attributes, unlisted (0n: none). */
  unchangedBefore?: bigint;
}

const HEAD = 88;
const NOT_LISTED = -0x80000000;

/** The records native/scan.c wrote (its header comment has the layout). */
class NativeScan implements DirScan {
  readonly count: number;
  readonly clean: boolean;
  private readonly i64: BigInt64Array;
  private readonly i32: Int32Array;
  private off = 16;
  private done = 0;

  constructor(private readonly ab: ArrayBuffer) {
    this.i64 = new BigInt64Array(ab);
    this.i32 = new Int32Array(ab);
    this.count = Number(this.i64[0]);
    this.clean = this.i64[1] === 1n;
  }

  next(): ScanEntry | undefined {
    if (this.done >= this.count) return undefined;
    this.done++;
    const o = this.off;
    const q = o >> 2;
    const nameLen = this.i32[q + 18]!;
    const st = this.i32[q + 19]!;
    const attrs = this.i32[q + 20]!;
    const e: ScanEntry = { name: Buffer.from(this.ab, o + HEAD, nameLen), type: this.i32[q + 21]! };
    if (st === 0) e.stat = statOfArray(this.i64, o >> 3);
    else if (st > 0) e.statErrno = st;
    let end = o + HEAD + nameLen;
    if (attrs > 0) {
      e.attrs = Buffer.from(this.ab, end, attrs);
      end += attrs;
    } else if (attrs === 0) e.attrs = EMPTY;
    else if (attrs !== NOT_LISTED) e.attrs = attrs;
    this.off = (end + 7) & ~7;
    return e;
  }

  names(): Buffer[] {
    const out: Buffer[] = [];
    let o = 16;
    for (let k = 0; k < this.count; k++) {
      const q = o >> 2;
      const nameLen = this.i32[q + 18]!;
      const attrs = this.i32[q + 20]!;
      out.push(Buffer.from(this.ab, o + HEAD, nameLen));
      o = (o + HEAD + nameLen + (attrs > 0 ? attrs : 0) + 7) & ~7;
    }
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

function typeOf(d: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): number {
  if (d.isFile()) return DT.REG;
  if (d.isDirectory()) return DT.DIR;
  if (d.isSymbolicLink()) return DT.LNK;
  if (d.isFIFO()) return DT.FIFO;
  if (d.isSocket()) return DT.SOCK;
  if (d.isCharacterDevice()) return DT.CHR;
  if (d.isBlockDevice()) return DT.BLK;
  return DT.UNKNOWN;
}

/** Names and types from Node's readdir: the walk takes each lstat and attribute list itself. */
class NodeScan implements DirScan {
  readonly count: number;
  readonly clean = false;
  private readonly entries: ScanEntry[];
  private done = 0;

  constructor(path: Buffer) {
    const list = readdirSync(path, { encoding: 'buffer', withFileTypes: true });
    this.entries = list.map((d) => ({ name: d.name, type: typeOf(d) })).sort((a, b) => Buffer.compare(a.name, b.name));
    this.count = this.entries.length;
  }

  next(): ScanEntry | undefined {
    return this.entries[this.done++];
  }

  names(): Buffer[] {
    return this.entries.map((e) => e.name);
  }
}

/**
 * Lists the directory at `path` (relative to the working directory, or absolute), sorted; throws
 * the system error as Node's readdir does. `calls`: the addon's scan (native.ts scanCalls());
 * undefined takes the slow way.
 */
export function scanDir(path: Buffer, opts: ScanOptions, calls: ScanCalls | undefined): DirScan {
  if (!calls) return new NodeScan(path);
  const r = calls.scanDir(path, opts.attrs, MAX_SCANNED, opts.unchangedBefore ?? 0n);
  if (typeof r !== 'number') return new NativeScan(r);
  if (r === -1) return new NodeScan(path);
  throw errnoError(r, 'scandir');
}
