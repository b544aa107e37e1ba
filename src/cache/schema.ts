/**
 * The entry cache's schema, as migrations: MIGRATIONS[v] takes a database from version v to
 * v+1 (version 0 is an empty file). A database newer than SCHEMA_VERSION is refused.
 */

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
];

export const SCHEMA_VERSION = MIGRATIONS.length;
