/**
 * The attribute memo: which directories held no entry with an ACL or a file capability when
 * the last walk listed them, so that tonight's walk need not ask again for entries unchanged
 * since (the llistxattr per entry was a quarter of the walk's cost).
 *
 * A directory is remembered by its identity (device, inode: a rename does not change it), when
 * its scan was clean (dir-scan.ts `clean`: every entry stat'ed, every attribute list read, no
 * ACL, no capability). The next walk of the same source with the same selection gives
 * `since(dir)` = the time T that walk began (less the clock's slack) for a remembered directory
 * whose ctime is older than T, and the scan then takes entries with a ctime older than T as
 * having none, unasked. Why that is sound:
 *
 *  - an entry's ACL or capability is an extended attribute, and setting one changes its ctime;
 *  - an entry added to the directory (created, renamed or linked into it) changes the
 *    directory's ctime, so the directory is not answered from the memo at all;
 *  - so an entry older than T in a directory unchanged since T was in it at T, as it is now,
 *    and that walk found it had neither.
 * A new directory has a ctime after T; an inode number reused by a new directory too. As with
 * every other shortcut that trusts times (listing-plan.ts), a clock set back by more than the
 * slack defeats it.
 *
 * Bounded: MAX_DIRS directories remembered (16 bytes each); beyond, the rest are not.
 */
import type { EntryStat } from '../core/entry-stat.js';

/** Directories remembered at most (their pairs: 16 MiB). */
export const MAX_DIRS = 1 << 20;

/** What a memo is kept with: a memo of another source or selection is not used. */
export interface MemoScope {
  source: string;
  selection: string;
}

interface Prior {
  t: bigint;
  /** (dev, ino) pairs, sorted. */
  dirs: BigUint64Array;
}

export class AttrMemo {
  private pairs = new BigUint64Array(1024);
  private n = 0;

  /**
   * `prior`: the memo the last walk kept (decode), if any; `t`: when this walk began (ns), less
   * the clock's slack — what the next walk will trust.
   */
  constructor(
    private readonly prior: Prior | undefined,
    readonly t: bigint,
  ) {}

  /** For a directory about to be listed (its lstat): entries older than this (ns) have no ACL or capability; 0n: ask each. */
  since(dir: EntryStat): bigint {
    const p = this.prior;
    if (!p || dir.ctimeNs >= p.t) return 0n;
    return has(p.dirs, dir.dev, dir.ino) ? p.t : 0n;
  }

  /** A directory whose scan was clean (dir-scan.ts), by its lstat. */
  clean(dir: EntryStat): void {
    if (this.n >= MAX_DIRS) return;
    if (this.pairs.length < (this.n + 1) * 2) {
      const grown = new BigUint64Array(Math.min(this.pairs.length * 2, MAX_DIRS * 2));
      grown.set(this.pairs);
      this.pairs = grown;
    }
    this.pairs[this.n * 2] = dir.dev;
    this.pairs[this.n * 2 + 1] = dir.ino;
    this.n++;
  }

  /** The memo for the next walk: text to keep with `scope`. */
  encode(scope: MemoScope): string {
    const order = Array.from({ length: this.n }, (_, i) => i).sort((a, b) => cmp(this.pairs, a, b));
    const sorted = new BigUint64Array(this.n * 2);
    let k = 0;
    for (const from of order) {
      // The same directory twice (a bind mount inside the source) is kept once.
      if (k && sorted[(k - 1) * 2] === this.pairs[from * 2] && sorted[(k - 1) * 2 + 1] === this.pairs[from * 2 + 1]) continue;
      sorted[k * 2] = this.pairs[from * 2]!;
      sorted[k * 2 + 1] = this.pairs[from * 2 + 1]!;
      k++;
    }
    const bytes = Buffer.from(sorted.buffer, 0, k * 16);
    return JSON.stringify({ v: 1, ...scope, t: String(this.t), dirs: bytes.toString('base64') });
  }

  /** A kept memo, when it is one of `scope`'s and well formed; undefined otherwise. */
  static decode(text: string | undefined, scope: MemoScope): Prior | undefined {
    if (!text) return undefined;
    try {
      const m = JSON.parse(text) as { v?: unknown; source?: unknown; selection?: unknown; t?: unknown; dirs?: unknown };
      if (m.v !== 1 || m.source !== scope.source || m.selection !== scope.selection || typeof m.t !== 'string' || !/^-?\d{1,20}$/.test(m.t) || typeof m.dirs !== 'string') return undefined;
      const raw = Buffer.from(m.dirs, 'base64');
      if (raw.length % 16 || raw.length > MAX_DIRS * 16) return undefined;
      const dirs = new BigUint64Array(raw.length / 8);
      Buffer.from(dirs.buffer).set(raw);
      for (let i = 1; i < dirs.length / 2; i++) if (cmp(dirs, i - 1, i) >= 0) return undefined;
      return { t: BigInt(m.t), dirs };
    } catch {
      return undefined;
    }
  }
}

function cmp(p: BigUint64Array, a: number, b: number): number {
  const d = p[a * 2]! - p[b * 2]! || p[a * 2 + 1]! - p[b * 2 + 1]!;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function has(p: BigUint64Array, dev: bigint, ino: bigint): boolean {
  let lo = 0;
  let hi = p.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const d = p[mid * 2]! - dev || p[mid * 2 + 1]! - ino;
    if (d === 0n) return true;
    if (d < 0n) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
