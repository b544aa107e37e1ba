/**
 * How a grid's rows are told apart in the entries table (the policy is cache/grid.ts): its
 * tag after every key its runs look up and write, GRID_MARK and the tag, 16 bytes; tag 0 — the
 * first grid, and every row from before grids were told apart — has keys as they always were.
 * Below both the cache (db.ts) and the grid policy, so neither imports the other's module.
 */
import { createHash } from 'node:crypto';

/** What marks a key as another grid's: 12 bytes no SHA-256 tail is expected to end with. */
export const GRID_MARK = createHash('sha256').update('lafs-backup: grid tag').digest().subarray(0, 12);

/** What appends a grid's tag to a key (empty for tag 0). */
export function gridSuffix(tag: number): Buffer {
  if (tag === 0) return Buffer.alloc(0);
  const b = Buffer.alloc(GRID_MARK.length + 4);
  GRID_MARK.copy(b);
  b.writeUInt32BE(tag, GRID_MARK.length);
  return b;
}

/** An SQL condition on `key`, with its parameters, that holds for the rows of grid `tag`. */
export function gridRows(tag: number): { sql: string; params: Buffer[] } {
  const n = GRID_MARK.length + 4;
  if (tag === 0) return { sql: `(length(key) < ${n} OR substr(key, -${n}, ${GRID_MARK.length}) <> ?)`, params: [GRID_MARK] };
  return { sql: `substr(key, -${n}) = ?`, params: [gridSuffix(tag)] };
}
