/**
 * Forgetting generations (cleanup), with the rows that listing rows stand for.
 *
 * A run that answers a directory from its listing row raises only that row to its generation,
 * not the rows of the directory's files (that is the point: one write instead of one per file).
 * The generation those rows would have carried is the listing's, so before rows are deleted
 * every listing row that stays raises the rows it refers to (`refs`) to its own generation:
 * the deferred bumps, written once per cleanup instead of once per run. Afterwards the rows
 * deleted are exactly those no kept backup used, as if every run had bumped every row.
 */
import type Database from 'better-sqlite3';

/** Listing rows are kind 3 (cache/schema.ts, version 4). */
export const LISTING = 3;

/** The keys a listing row refers to, each as a 4-byte length and the key (decodeRefs reads them back). */
export function encodeRefs(keys: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const k of keys) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(k.length);
    parts.push(len, k);
  }
  return Buffer.concat(parts);
}

export function* decodeRefs(blob: Buffer): Generator<Buffer> {
  for (let o = 0; o + 4 <= blob.length; ) {
    const n = blob.readUInt32LE(o);
    o += 4;
    yield blob.subarray(o, o + n);
    o += n;
  }
}

/**
 * Raises the rows referred to by listing rows newer than `after` to the listing's generation
 * (never lowers one). Listing rows are read a page at a time in key order: a statement cannot
 * be stepped while another writes.
 */
function settle(db: Database.Database, after: number): void {
  const page = db.prepare(`SELECT key, generation, refs FROM entries WHERE key > ? AND kind = ${LISTING} AND generation > ? AND refs IS NOT NULL ORDER BY key LIMIT 256`);
  const raise = db.prepare('UPDATE entries SET generation = ? WHERE key = ? AND generation < ?');
  let last: Buffer = Buffer.alloc(0);
  for (;;) {
    const rows = page.all(last, after) as { key: Buffer; generation: number; refs: Buffer }[];
    if (!rows.length) return;
    for (const r of rows) for (const k of decodeRefs(r.refs)) raise.run(r.generation, k, r.generation);
    last = rows[rows.length - 1]!.key;
  }
}

/**
 * Deletes the cache rows, backups rows and start records of generations (each one given, or
 * all up to each with `upTo`), after settling the listings that stay. With `dryRun` the same
 * work is done and rolled back: the counts are exactly what a real run would delete.
 */
export function forgetGenerations(db: Database.Database, generations: readonly number[], upTo: boolean, dryRun: boolean): { entries: number; backups: number } {
  const op = upTo ? '<=' : '=';
  const delEntries = db.prepare(`DELETE FROM entries WHERE generation ${op} ?`);
  const delBackups = db.prepare(`DELETE FROM backups WHERE generation ${op} ?`);
  const delStarts = db.prepare(`DELETE FROM generations WHERE generation ${op} ?`);
  let entries = 0;
  let backups = 0;
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const g of generations) {
      settle(db, g);
      entries += delEntries.run(g).changes;
      backups += delBackups.run(g).changes;
      delStarts.run(g);
    }
    db.exec(dryRun ? 'ROLLBACK' : 'COMMIT');
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
  return { entries, backups };
}
