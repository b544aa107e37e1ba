/**
 * Forgetting what the grid does not have (issue 24.5): rows whose caps a check found
 * unrecoverable (with the directories above them), or every row of a grid whose backup root is
 * not there. The next backup then finds no row for those entries and uploads them again.
 *
 * Rows are found by cap with one scan of the table (there is no index on caps: it would cost
 * ~100 bytes a row in every cache for an operation that runs only after a loss). A listing row
 * that goes first raises the rows it stands for to its own generation (cache/forget.ts), as
 * cleanup would: they were used by the backups that used the listing, and cleanup must still
 * forget them exactly with the last of those.
 */
import type Database from 'better-sqlite3';
import { decodeRefs, LISTING } from './forget.js';

const CHUNK = 500;

/**
 * Deletes, among the rows satisfying `where` (one grid's, cache/grid-keys.ts gridRows), those with
 * one of `target.caps`, or all of them; one transaction. Returns how many rows went.
 */
export function forgetRows(db: Database.Database, target: { caps: readonly string[] } | 'all', where: { sql: string; params: unknown[] }): number {
  const raise = db.prepare('UPDATE entries SET generation = ? WHERE key = ? AND generation < ?');
  const del = db.prepare('DELETE FROM entries WHERE key = ?');
  let n = 0;
  db.exec('BEGIN IMMEDIATE');
  try {
    if (target === 'all') n = db.prepare(`DELETE FROM entries WHERE ${where.sql}`).run(...where.params).changes;
    else {
      for (let i = 0; i < target.caps.length; i += CHUNK) {
        const caps = target.caps.slice(i, i + CHUNK);
        const rows = db
          .prepare(`SELECT key, kind, generation, refs FROM entries WHERE cap IN (${caps.map(() => '?').join(', ')}) AND ${where.sql}`)
          .all(...caps, ...where.params) as { key: Buffer; kind: number; generation: number; refs: Buffer | null }[];
        for (const r of rows) if (r.kind === LISTING && r.refs) for (const k of decodeRefs(r.refs)) raise.run(r.generation, k, r.generation);
        for (const r of rows) n += del.run(r.key).changes;
      }
    }
    db.exec('COMMIT');
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
  return n;
}
