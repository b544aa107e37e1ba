/**
 * mtimes in edge metadata: text `SECONDS.NNNNNNNNN`, exact to the nanosecond, for any time a
 * filesystem can hold — SECONDS may be negative (before 1970) and large (far in the future);
 * the nine digits are always the non-negative fraction added to SECONDS (so -0.5 s is
 * "-1.500000000"). `tahoe backup`'s float seconds are read too (to the microsecond).
 */

const NS = 1_000_000_000n;

export function mtimeText(ns: bigint): string {
  let s = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) {
    // BigInt division truncates toward zero; the fraction must be the non-negative remainder.
    s -= 1n;
    frac += NS;
  }
  return `${s}.${String(frac).padStart(9, '0')}`;
}

/** The nanoseconds an edge's mtime stands for; undefined for anything that is not one. */
export function parseMtime(v: unknown): bigint | undefined {
  if (typeof v === 'string') {
    const m = /^(-?\d{1,19})\.(\d{9})$/.exec(v);
    return m ? BigInt(m[1]!) * NS + BigInt(m[2]!) : undefined;
  }
  if (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < 1e15) return BigInt(Math.round(v * 1e6)) * 1000n;
  return undefined;
}
