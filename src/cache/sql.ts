/**
 * The entry cache's statements, by name (cache/db.ts prepares each once). `GRID` stands for
 * the condition that keeps a run to its grid's rows (cache/grid-keys.ts).
 */
import { LISTING } from './forget.js';

export const SQL = {
  get: 'SELECT cap, ctime_ns AS ctimeNs, sha256, enc, xattrs FROM entries WHERE key = ? AND kind = ?',
  // Two probes of the (sha256, enc) index, never a scan of every row with those contents
  // (a tree of 20,000 empty files has 20,000 of them). Only rows of this run's grid (GRID,
  // cache/grid.ts: a condition on the key, which the index holds).
  contentAs: 'SELECT cap, enc FROM entries WHERE sha256 = ? AND enc = ? AND kind = 0 AND GRID LIMIT 1',
  content: 'SELECT cap, enc FROM entries WHERE sha256 = ? AND enc IS NOT NULL AND kind = 0 AND GRID LIMIT 1',
  use: 'UPDATE entries SET generation = ? WHERE key = ? AND generation < ?',
  useFile: 'UPDATE entries SET generation = ?, ctime_ns = coalesce(?, ctime_ns), xattrs = coalesce(?, xattrs) WHERE key = ?',
  put: 'INSERT OR REPLACE INTO entries (key, kind, cap, generation, ctime_ns, sha256, enc, xattrs, ts, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  sized: 'SELECT 1 FROM entries WHERE size = ? AND sha256 IS NOT NULL AND kind = 0 AND enc IS NOT NULL LIMIT 1',
  unsized: 'SELECT 1 FROM entries WHERE size IS NULL AND sha256 IS NOT NULL AND kind = 0 AND enc IS NOT NULL LIMIT 1',
  putListing: `INSERT OR REPLACE INTO entries (key, kind, cap, generation, ts, refs) VALUES (?, ${LISTING}, ?, ?, ?, ?)`,
  maxGen: 'SELECT max(g) AS g FROM (SELECT max(generation) AS g FROM entries UNION ALL SELECT max(generation) FROM backups UNION ALL SELECT max(generation) FROM generations)',
  finished: 'SELECT 1 FROM backups WHERE generation = ? LIMIT 1',
  startGen: 'INSERT OR REPLACE INTO generations (generation, started, source) VALUES (?, ?, ?)',
  meta: 'SELECT value FROM meta WHERE key = ?',
  setMeta: 'INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)',
  addBackup: 'INSERT INTO backups (name, source, cap, generation, ts, ts_check) VALUES (?, ?, ?, ?, ?, NULL)',
  rename: 'UPDATE backups SET name = ? WHERE id = ?',
  // Newest means the highest generation, never the latest clock time (a clock set back).
  backups: 'SELECT id, name, source, cap, generation, ts, ts_check AS tsCheck, check_problem AS checkProblem FROM backups ORDER BY generation, id',
  seriesCaps: 'SELECT DISTINCT cap FROM backups WHERE name = ?',
  checked: 'UPDATE backups SET ts_check = ?, check_problem = ? WHERE cap = ?',
} as const;
