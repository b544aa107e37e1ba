/**
 * Sets of code points as sorted, disjoint, non-adjacent [lo, hi] intervals: what one character
 * of a filter regex may match, for the check that no filter can backtrack without bound
 * (regex-linear.ts). Only union, complement and "do two sets meet" are needed.
 */

export const MAX_CP = 0x10ffff;

export class CharSet {
  private constructor(readonly ranges: readonly (readonly [number, number])[]) {}

  static of(ranges: Iterable<readonly [number, number]>): CharSet {
    const sorted = [...ranges].filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
    const out: [number, number][] = [];
    for (const [lo, hi] of sorted) {
      const last = out[out.length - 1];
      if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
      else out.push([lo, hi]);
    }
    return new CharSet(out);
  }

  static chars(...cps: number[]): CharSet {
    return CharSet.of(cps.map((c) => [c, c] as const));
  }

  static readonly all = CharSet.of([[0, MAX_CP]]);
  static readonly none = CharSet.of([]);

  union(other: CharSet): CharSet {
    return CharSet.of([...this.ranges, ...other.ranges]);
  }

  complement(): CharSet {
    const out: [number, number][] = [];
    let next = 0;
    for (const [lo, hi] of this.ranges) {
      if (lo > next) out.push([next, lo - 1]);
      next = hi + 1;
    }
    if (next <= MAX_CP) out.push([next, MAX_CP]);
    return new CharSet(out);
  }

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  has(cp: number): boolean {
    return this.ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
  }

  intersect(other: CharSet): CharSet {
    const out: [number, number][] = [];
    let i = 0;
    let j = 0;
    const a = this.ranges;
    const b = other.ranges;
    while (i < a.length && j < b.length) {
      const lo = Math.max(a[i]![0], b[j]![0]);
      const hi = Math.min(a[i]![1], b[j]![1]);
      if (lo <= hi) out.push([lo, hi]);
      if (a[i]![1] < b[j]![1]) i++;
      else j++;
    }
    return new CharSet(out);
  }

  /** Whether some code point is in both sets. */
  meets(other: CharSet): boolean {
    let i = 0;
    let j = 0;
    const a = this.ranges;
    const b = other.ranges;
    while (i < a.length && j < b.length) {
      const [alo, ahi] = a[i]!;
      const [blo, bhi] = b[j]!;
      if (ahi < blo) i++;
      else if (bhi < alo) j++;
      else return true;
    }
    return false;
  }

  /** Whether every code point of the set is ASCII. */
  get ascii(): boolean {
    return this.ranges.every(([, hi]) => hi < 0x80);
  }
}

/** Letters whose case partners toLowerCase/toUpperCase do not reach (Unicode simple case folding). */
const EXTRA_CASES: number[][] = [
  [0x69, 0x49, 0x130, 0x131],
  [0x73, 0x53, 0x17f],
  [0x6b, 0x4b, 0x212a],
  [0xe5, 0xc5, 0x212b],
  [0x3c9, 0x3a9, 0x2126],
  [0x3c3, 0x3a3, 0x3c2],
  [0x3b2, 0x392, 0x3d0],
  [0x3b5, 0x395, 0x3f5],
  [0x3b8, 0x398, 0x3d1, 0x3f4],
  [0x3b9, 0x399, 0x345, 0x1fbe],
  [0x3ba, 0x39a, 0x3f0],
  [0x3c0, 0x3a0, 0x3d6],
  [0x3c1, 0x3a1, 0x3f1],
  [0x3c6, 0x3a6, 0x3d5],
  [0xdf, 0x1e9e],
  [0x1e61, 0x1e60, 0x1e9b],
];

/** The code points that match `cp` ignoring case (Python's IGNORECASE; ASCII-only under `(?a)`). */
export function caseVariants(cp: number, ascii: boolean): number[] {
  if (ascii) {
    if (cp >= 0x41 && cp <= 0x5a) return [cp, cp + 32];
    if (cp >= 0x61 && cp <= 0x7a) return [cp - 32, cp];
    return [cp];
  }
  const out = new Set([cp]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of [...out]) {
      const s = String.fromCodePoint(c);
      const more = [s.toLowerCase(), s.toUpperCase()].filter((x) => [...x].length === 1).map((x) => x.codePointAt(0)!);
      for (const row of EXTRA_CASES) if (row.includes(c)) more.push(...row);
      for (const m of more) if (!out.has(m)) (out.add(m), (grew = true));
    }
  }
  return [...out].sort((a, b) => a - b);
}
