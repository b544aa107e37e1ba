/**
 * What reading backups keeps in the entry cache (schema 6), beside the rows of backing up:
 *
 * - **Directory listings** (`listings`): a directory cap of a backup is immutable, so its
 *   listing, read once from the grid, is valid forever. Walks (find, stats, dump, ls) look a
 *   dircap up here before asking the grid, and store what they read — a second walk of the
 *   same backup, and every subtree an unchanged night shares with the one before, costs no
 *   request. Keyed by the SHA-256 of the cap (32 bytes); the children as raw-deflated JSON.
 *   `cleanup` forgets the listings no kept backup reaches through the stored listings.
 * - **Run summaries** (`backups.summary`): the `backup --json` object of the run that made a
 *   backup (what was uploaded and reused that night), recorded with it.
 * - **Plaintext sizes**: an xz file's size on disk by its cap, from the file rows, which keep
 *   it (schema 5), for edges written before the edge carried it.
 *
 * Writing here is never what a command exists for: a store that cannot be written (a read-only
 * cache, a backup holding the write lock) stores nothing more for the rest of the command.
 */
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import { log } from '../log.js';
import type { EntryCache } from './db.js';
import { describeDbError } from './db-errors.js';

/** One child of a stored listing: name, node type, read cap, size as listed, edge metadata. */
export type ListingRow = [name: string, type: string, cap: string | null, size: number | null, metadata: Record<string, unknown> | null];

/** Only these listings can be kept: their caps name contents that never change. */
export function isImmutableDircap(cap: string): boolean {
  return /^URI:DIR2-(CHK|LIT):/.test(cap);
}

function keyOf(dircap: string): Buffer {
  return createHash('sha256').update(dircap).digest();
}

export function encodeListing(rows: readonly ListingRow[]): Buffer {
  return deflateRawSync(Buffer.from(JSON.stringify(rows)));
}

/** The rows of a stored body; undefined for one that does not decode (it is read from the grid again). */
export function decodeListing(body: Buffer): ListingRow[] | undefined {
  try {
    const rows = JSON.parse(inflateRawSync(body).toString('utf8')) as unknown;
    if (!Array.isArray(rows)) return undefined;
    for (const r of rows) {
      if (!Array.isArray(r) || r.length !== 5 || typeof r[0] !== 'string' || typeof r[1] !== 'string') return undefined;
      if (r[2] !== null && typeof r[2] !== 'string') return undefined;
      if (r[3] !== null && typeof r[3] !== 'number') return undefined;
      if (r[4] !== null && (typeof r[4] !== 'object' || Array.isArray(r[4]))) return undefined;
    }
    return rows as ListingRow[];
  } catch {
    return undefined;
  }
}

/** The listings of one entry cache (see the file's comment). */
export class ListingStore {
  private readonly getStmt: Database.Statement;
  private putStmt?: Database.Statement;
  /** Stores nothing more: read-only, or a write failed (said once, at debug). */
  private frozen: boolean;
  /** Listings answered from here, and stored here, by this store. */
  readonly counts = { hits: 0, stored: 0 };

  constructor(private readonly cache: EntryCache) {
    const db = cache.connection;
    this.getStmt = db.prepare('SELECT body FROM listings WHERE key = ?').pluck();
    this.frozen = cache.readonly;
    // A backup holds the write lock for up to commit_after.seconds: a listing not stored then
    // costs one more request later, waiting for the lock would cost the command's time.
    if (!this.frozen) db.pragma('busy_timeout = 200');
  }

  get(dircap: string): ListingRow[] | undefined {
    if (!isImmutableDircap(dircap)) return undefined;
    let body: Buffer | undefined;
    try {
      body = this.getStmt.get(keyOf(dircap)) as Buffer | undefined;
    } catch (e) {
      throw describeDbError(this.cache.path, e);
    }
    const rows = body && decodeListing(body);
    if (rows) this.counts.hits++;
    return rows;
  }

  put(dircap: string, rows: readonly ListingRow[]): void {
    if (this.frozen || !isImmutableDircap(dircap)) return;
    try {
      this.putStmt ??= this.cache.connection.prepare('INSERT OR REPLACE INTO listings (key, body, ts) VALUES (?, ?, ?)');
      this.putStmt.run(keyOf(dircap), encodeListing(rows), Date.now() / 1000);
      this.counts.stored++;
    } catch (e) {
      this.frozen = true;
      log.debug(`directory listings are not stored in the entry cache for the rest of this command: ${describeDbError(this.cache.path, e).message}`);
    }
  }
}

/**
 * Forgets the stored listings no backup of `roots` reaches (cleanup): marks what is reachable
 * from each root through the stored listings themselves — no request — in a temporary table,
 * then deletes the rest. A listing reached only through one that is not stored counts as
 * unreached (walks store from the root down, so that is a listing of a cap walked on its own).
 * Returns how many were forgotten.
 */
export function forgetUnreachableListings(cache: EntryCache, roots: Iterable<string>, dryRun = false): number {
  const db = cache.connection;
  try {
    db.exec('CREATE TEMP TABLE IF NOT EXISTS reach (key BLOB PRIMARY KEY) WITHOUT ROWID; DELETE FROM temp.reach');
    const mark = db.prepare('INSERT OR IGNORE INTO temp.reach (key) VALUES (?)');
    const body = db.prepare('SELECT body FROM listings WHERE key = ?').pluck();
    const stack = [...new Set(roots)].filter(isImmutableDircap);
    while (stack.length) {
      const key = keyOf(stack.pop()!);
      if (mark.run(key).changes === 0) continue;
      const b = body.get(key) as Buffer | undefined;
      for (const [, type, cap] of (b && decodeListing(b)) ?? []) if (type === 'dirnode' && cap && isImmutableDircap(cap)) stack.push(cap);
    }
    const count = 'SELECT count(*) FROM listings WHERE key NOT IN (SELECT key FROM temp.reach)';
    const n = dryRun ? (db.prepare(count).pluck().get() as number) : db.prepare('DELETE FROM listings WHERE key NOT IN (SELECT key FROM temp.reach)').run().changes;
    db.exec('DELETE FROM temp.reach');
    return n;
  } catch (e) {
    throw describeDbError(cache.path, e);
  }
}

/** Records the run summary (`backup --json`) with the backup of its generation; a failure is only said (the backup is recorded). */
export function recordRunSummary(cache: EntryCache, summary: { generation: number | null }): void {
  if (summary.generation === null) return;
  try {
    cache.connection.prepare('UPDATE backups SET summary = ? WHERE generation = ?').run(JSON.stringify(summary), summary.generation);
  } catch (e) {
    log.warn(`the run's summary could not be recorded with its backup (stats will work it out from the trees): ${describeDbError(cache.path, e).message}`);
  }
}

/** The recorded run summaries, by generation (backups made before schema 6 have none). */
export function runSummaries(cache: EntryCache): Map<number, Record<string, unknown>> {
  const out = new Map<number, Record<string, unknown>>();
  const rows = cache.connection.prepare('SELECT generation, summary FROM backups WHERE summary IS NOT NULL').all() as { generation: number; summary: string }[];
  for (const r of rows) {
    try {
      const v = JSON.parse(r.summary) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) out.set(r.generation, v as Record<string, unknown>);
    } catch {
      // not ours to fail over: stats works it out from the trees
    }
  }
  return out;
}

/** Plaintext sizes of xz files by cap, from the file rows that keep them (cache schema 5). */
export class PlainSizes {
  private readonly stmt: Database.Statement;

  constructor(private readonly cache: EntryCache) {
    this.stmt = cache.connection.prepare("SELECT size FROM entries WHERE cap = ? AND kind = 0 AND enc LIKE 'xz%' AND size IS NOT NULL LIMIT 1").pluck();
  }

  of(cap: string): number | undefined {
    try {
      const v = this.stmt.get(cap);
      return typeof v === 'number' ? v : undefined;
    } catch (e) {
      throw describeDbError(this.cache.path, e);
    }
  }
}
