/**
 * Phase 1's lstat of one entry of a directory listed the slow way (dir-scan.ts: no addon, or
 * a directory too big for one call), by its absolute path: the addon's fstatat(AT_FDCWD, …) writing nine
 * numbers into one reused array — no Stats object of some twenty fields per entry, and the
 * nanosecond times and inode the listing keys need for every entry at no extra cost. Without
 * the addon (or for a time beyond 64-bit nanoseconds), Node's lstat.
 */
import { lstatSync } from 'node:fs';
import { statOfArray, statOfNode, type EntryStat } from '../core/entry-stat.js';
import { atCalls, LSTAT_FIELDS, type AtCalls } from '../native.js';

/** fstatat's "relative to the working directory". */
const AT_FDCWD = -100;
const ENOENT = 2;

/** An lstat function: the entry's stat, undefined when it is not there; other failures throw. */
export type Lstat = (path: Buffer) => EntryStat | undefined;

export function lstatOf(at: AtCalls | undefined = atCalls()): Lstat {
  const byNode: Lstat = (path) => {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return st && statOfNode(st);
  };
  if (!at || typeof at.lstatAt !== 'function') return byNode;
  const out = new BigInt64Array(LSTAT_FIELDS);
  return (path) => {
    const r = at.lstatAt(AT_FDCWD, path, out);
    if (r === 0) return statOfArray(out);
    // ENOENT: not there. ENOTDIR, or a time out of range: Node's lstat says (and throws) as before.
    return r === ENOENT ? undefined : byNode(path);
  };
}
