/**
 * The entry cache's schema, as migrations: MIGRATIONS[v] takes a database from version v to
 * v+1 (version 0 is an empty file). A database newer than SCHEMA_VERSION is refused.
 */
import type Database from 'better-sqlite3';
import { CacheError } from '../errors.js';

export const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- One row per local entry known to be on the grid: key = SHA-256 of the key material.
  -- kind: 0 file, 1 symlink, 2 directory. Files keep the ctime and content hash they had.
  CREATE TABLE entries (
    key BLOB PRIMARY KEY,
    kind INTEGER NOT NULL,
    cap TEXT NOT NULL,
    generation INTEGER NOT NULL,
    ctime_ns TEXT,
    sha256 BLOB,
    ts REAL NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX entries_generation ON entries (generation);
  -- Every run that started, with its generation (a generation without a backup is unfinished).
  CREATE TABLE generations (generation INTEGER PRIMARY KEY, started REAL NOT NULL, source TEXT);
  CREATE TABLE backups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    cap TEXT NOT NULL,
    generation INTEGER NOT NULL,
    ts REAL NOT NULL,
    ts_check REAL
  );
  CREATE INDEX backups_generation ON backups (generation);
  CREATE INDEX backups_ts_check ON backups (ts_check);
  `,
  // 2: files record how their contents were stored ('raw', or the xz encoding id such as
  // 'xz:p6:crc64'; NULL in rows from before, whose key says it), and the content index:
  // a file whose key is new but whose contents are known reuses their cap (renames, copies).
  // Rows stay tied to generations, so cleanup forgets contents exactly with their last user.
  `
  ALTER TABLE entries ADD COLUMN enc TEXT;
  CREATE INDEX entries_content ON entries (sha256, enc) WHERE sha256 IS NOT NULL AND enc IS NOT NULL;
  `,
  // 3: file rows remember their user xattrs (JSON as in the edge, '' for none; NULL: not
  // known), so an unchanged file's are not listed again: a change to them moves the ctime.
  `
  ALTER TABLE entries ADD COLUMN xattrs TEXT;
  `,
  // 4: listing rows (kind 3): a directory as it is on disk (cache/keys.ts ListingKey) to its
  // dircap, so an unchanged directory is one lookup. \`refs\` holds the keys of the rows it
  // stands for (its files' and symlinks' rows, and its directory row): a run that reuses the
  // listing does not touch them, and cleanup raises them to the listing's generation first
  // (cache/forget.ts), so they are forgotten exactly with the last backup that used them.
  `
  ALTER TABLE entries ADD COLUMN refs BLOB;
  `,
  // 5: file rows remember the size of their plaintext, so a larger file is hashed before its
  // upload only when some stored contents have its size (the same bytes have the same size).
  // Rows from before have none and count as any size (cache/db.ts mayKnowSize).
  `
  ALTER TABLE entries ADD COLUMN size INTEGER;
  CREATE INDEX entries_size ON entries (size) WHERE sha256 IS NOT NULL AND kind = 0;
  `,
  // 6: what reading backups needs (cache/trees.ts). `listings`: directory listings read from
  // the grid, keyed by the SHA-256 of their immutable dircap (a dircap's listing never changes),
  // the children as deflated JSON; walks read through it, cleanup forgets those no kept backup
  // reaches. `backups.summary`: the run's `backup --json` object, recorded with the backup.
  // `entries_xz_cap`: an xz file's plaintext size found by its cap (file rows keep it), for
  // edges written before they carried it.
  `
  CREATE TABLE listings (key BLOB PRIMARY KEY, body BLOB NOT NULL, ts REAL NOT NULL) WITHOUT ROWID;
  ALTER TABLE backups ADD COLUMN summary TEXT;
  CREATE INDEX entries_xz_cap ON entries (cap) WHERE kind = 0 AND enc LIKE 'xz%';
  `,
  // 6 → 7: `backups.check_problem`: what the last check of that root cap found wrong (NULL: it
  // was healthy, or none ran), so that `serve` can warn of a failed check, not only of its age.
  `
  ALTER TABLE backups ADD COLUMN check_problem TEXT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The schema version of a lafs-backup cache (0: an empty file); refuses a database of something
 * else, or one a newer lafs-backup wrote, naming the file.
 */
export function schemaVersion(db: Database.Database, path: string): number {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  const version = hasMeta ? Number((db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value ?? 0) : 0;
  if (!hasMeta) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0) throw new CacheError(`entry cache ${path} is an SQLite database of something else (no lafs-backup schema)`);
  }
  if (version > SCHEMA_VERSION) {
    throw new CacheError(`entry cache ${path} was written by a newer lafs-backup (schema ${version}, this one knows ${SCHEMA_VERSION}); refusing to touch it`);
  }
  return version;
}

/** Brings the database up to SCHEMA_VERSION (one transaction), or refuses it, naming the file. */
export function migrate(db: Database.Database, path: string): void {
  const version = schemaVersion(db, path);
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
  })();
}
