/**
 * Opening the entry cache to read it only (list, ls NAME, restore NAME, diff), wherever it is —
 * including a disk mounted read-only, the disaster-recovery case.
 *
 * A WAL-mode database is read through its `-shm` index. When the cache was closed cleanly
 * there is no `-shm` (nor `-wal`), and on a read-only disk SQLite cannot create one: it answers
 * SQLITE_CANTOPEN. SQLite's answer to that, `immutable=1`, is a URI parameter, and
 * better-sqlite3 is built without URI filenames. So the file is read into memory instead (its
 * header switched from WAL to rollback mode, which is all a WAL file differs by) — complete,
 * since a cleanly closed cache has everything in the main file. A `-wal` left by a crash
 * without its `-shm` is replayed by SQLite itself on a private copy. An older schema is
 * upgraded on an in-memory copy too: nothing on disk is ever written.
 */
import { accessSync, constants, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { describeDbError } from './db-errors.js';
import { migrate, schemaVersion, SCHEMA_VERSION } from './schema.js';

export function openReadonly(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
    // SQLite opens lazily: the first read is when the -wal and -shm are needed.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (e) {
    db?.close();
    db = undefined;
    if (!(e as { code?: string }).code?.startsWith('SQLITE_CANTOPEN') || !readableButNotBeside(path)) throw describeDbError(path, e);
  }
  try {
    db ??= inMemory(path);
    if (schemaVersion(db, path) < SCHEMA_VERSION) {
      // An old disk's cache: upgraded in memory for this command, never on disk.
      const copy = new Database(db.serialize());
      db.close();
      db = copy;
      migrate(db, path);
    }
    return db;
  } catch (e) {
    db?.close();
    throw describeDbError(path, e);
  }
}

/** Whether the cache file, and its directory (for its -wal and -shm), can be written. */
export function cacheWritable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    accessSync(dirname(path), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The cache file can be read, but nothing can be created beside it (a read-only disk or directory). */
function readableButNotBeside(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
  } catch {
    return false;
  }
  try {
    accessSync(dirname(path), constants.W_OK);
    return false;
  } catch {
    return true;
  }
}

/** The database as an in-memory copy (see the file's comment). */
function inMemory(path: string): Database.Database {
  const wal = `${path}-wal`;
  let walSize = 0;
  try {
    walSize = statSync(wal).size;
  } catch {
    // no -wal: the main file is the whole database
  }
  if (walSize === 0) return new Database(asRollbackMode(readFileSync(path)));
  // A -wal without its -shm (left by a crash, or copied without it): SQLite replays it on a
  // private copy (a 0700 directory), which is removed before this returns.
  const dir = mkdtempSync(join(tmpdir(), 'lafs-backup-cache-'));
  try {
    const copy = join(dir, 'cache.db');
    copyFileSync(path, copy);
    copyFileSync(wal, `${copy}-wal`);
    const db = new Database(copy, { fileMustExist: true });
    try {
      return new Database(asRollbackMode(db.serialize()));
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes 18 and 19 of the header say WAL (2) or rollback (1); an in-memory database has no WAL. */
function asRollbackMode(image: Buffer): Buffer {
  if (image.length >= 100 && image[18] === 2 && image[19] === 2) {
    image[18] = 1;
    image[19] = 1;
  }
  return image;
}
