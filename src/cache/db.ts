/**
 * The entry cache (SQLite through better-sqlite3): what is known about local entries and the
 * caps they were uploaded as, the generation that last used each row, and finished backups.
 * The only module that speaks SQL. It holds caps: the file is created mode 0600.
 *
 * Writes are batched in transactions (`commit_after`: so many statements or seconds), in WAL
 * mode: a crash loses at most the last batch, never the database.
 *
 * Generation bumps of reused rows are different: an unchanged tree bumps every row, on keys
 * scattered all over the table, and committing those 50 at a time rewrote ~100 pages per
 * commit. They are buffered and written in large batches instead (and always before a
 * backup is recorded). Losing buffered bumps in a crash costs nothing: the next run bumps
 * the rows again.
 */
import { closeSync, fchmodSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AppError, CacheError, describeErrno } from '../errors.js';
import { describeDbError } from './db-errors.js';
import { log } from '../log.js';
import type { EntryKind } from '../core/child.js';
import { encodeRefs, forgetGenerations, LISTING } from './forget.js';
import { gridRows, gridSuffix } from './grid-keys.js';
import { keyPath } from './keys.js';
import { forgetRows } from './lost.js';
import { openReadonly } from './readonly.js';
import { migrate } from './schema.js';

export { CacheError };

const KIND_CODE: Record<EntryKind, number> = { file: 0, symlink: 1, dir: 2 };

interface FileRow {
  cap: string;
  ctimeNs: string | null;
  sha256: Buffer | null;
  enc: string | null;
  xattrs: string | null;
}

/**
 * What to do with a file, as the cache sees it (Tahoe's backupdb `check_file`, borg's
 * `file_known_and_unchanged`): reuse the cap as it is; hash the contents locally and reuse the
 * cap if they are still `sha256` (only the ctime moved: chmod, chown, an ACL); or upload.
 */
export type FileDecision =
  | { action: 'reuse'; cap: string; enc?: string; xattrs: string | null }
  | { action: 'rehash'; cap: string; sha256: Buffer; enc?: string }
  | { action: 'upload' };

/** How a file's contents were stored: 'raw', or an xz encoding id ('xz:p6:crc64'). */
export type StoredAs = string;

/** Which queue file a finished backup consumed (so it is not reused by mistake). */
export interface QueueStamp {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface BackupRow {
  id: number;
  name: string;
  source: string;
  cap: string;
  generation: number;
  ts: number;
  tsCheck: number | null;
  /** What the last check found wrong (null: healthy, or never checked). */
  checkProblem: string | null;
}

export interface CacheOptions {
  commitAfter?: { queries: number; seconds: number };
  readonly?: boolean;
}

type Stmt = Database.Statement;

/**
 * The statements of a run, prepared on first use: a cache opened read-only with an older schema
 * (an old disk, mounted read-only) is only asked what its schema has.
 */
const SQL = {
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

export class EntryCache {
  private readonly db: Database.Database;
  private readonly commitQueries: number;
  private readonly commitMs: number;
  private pending = 0;
  private txStarted = 0;
  private timer?: NodeJS.Timeout;
  generation = 0;
  private readonly prepared = new Map<keyof typeof SQL, Stmt>();
  /** The grid whose rows this run uses (cache/grid.ts), and what its keys end with. */
  private grid = 0;
  private suffix: Buffer = Buffer.alloc(0);
  /** Keys of reused rows whose generation bump is not written yet. */
  private uses: Buffer[] = [];
  /** Whether rows without a plaintext size exist (mayKnowSize), once asked. */
  private unsized?: boolean;
  static readonly USE_BATCH = 20_000;
  /** Opened read-only: nothing may be written (cache/trees.ts stores nothing then). */
  readonly readonly: boolean;

  /** The connection, for the stores of this cache's other tables (cache/trees.ts); SQL stays in src/cache. */
  get connection(): Database.Database {
    return this.db;
  }

  private constructor(
    readonly path: string,
    db: Database.Database,
    opts: CacheOptions,
  ) {
    this.db = db;
    this.readonly = opts.readonly ?? false;
    this.commitQueries = opts.commitAfter?.queries ?? 50;
    this.commitMs = (opts.commitAfter?.seconds ?? 10) * 1000;
  }

  private stmt(name: keyof typeof SQL): Stmt {
    let s = this.prepared.get(name);
    if (!s) {
      try {
        s = this.db.prepare(SQL[name].replace('GRID', gridRows(this.grid).sql));
      } catch (e) {
        throw describeDbError(this.path, e);
      }
      if (name === 'sized' || name === 'unsized') s.pluck();
      this.prepared.set(name, s);
    }
    return s;
  }

  /** The grid-condition parameters a statement with GRID takes after its own. */
  private gridParams(): Buffer[] {
    return gridRows(this.grid).params;
  }

  /** A key as stored for this run's grid (cache/grid.ts: another grid's rows are not found). */
  private k(key: Buffer): Buffer {
    return this.suffix.length ? Buffer.concat([key, this.suffix]) : key;
  }

  /**
   * Looks up and writes the rows of grid `tag` from now on (cache/grid.ts chooses it). Rows of
   * other grids are neither found nor touched.
   */
  useGrid(tag: number): void {
    if (tag === this.grid) return;
    this.flushUses();
    this.grid = tag;
    this.suffix = gridSuffix(tag);
    this.prepared.delete('contentAs');
    this.prepared.delete('content');
  }

  /**
   * Opens (creating it 0600 if needed) and migrates the cache; errors name the file. With
   * `readonly` nothing is written, and the cache may sit on a read-only disk (cache/readonly.ts).
   */
  static open(path: string, opts: CacheOptions = {}): EntryCache {
    if (opts.readonly) return new EntryCache(path, openReadonly(path), opts);
    try {
      const fd = openSync(path, 'a', 0o600);
      fchmodSync(fd, 0o600);
      closeSync(fd);
    } catch (e) {
      throw new CacheError(`entry cache ${path}: cannot create or open it: ${describeErrno(e)}`);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('cache_size = -8000');
      db.pragma('foreign_keys = ON');
    } catch (e) {
      // Closed first: the reason is looked for with the files it held (cantOpenReason).
      db?.close();
      throw describeDbError(path, e);
    }
    try {
      migrate(db, path);
      return new EntryCache(path, db, opts);
    } catch (e) {
      db.close();
      throw e instanceof AppError ? e : describeDbError(path, e);
    }
  }

  // ---- generations ----------------------------------------------------------------------

  /**
   * The generation a run would write now: one more than any seen — or, with `tryResume`, the
   * last one again when no finished backup carries it (an interrupted run).
   */
  nextGeneration(tryResume: boolean): { generation: number; resume: boolean } {
    // The highest generation ever started is kept in meta too: `cleanup -g` of the newest one
    // must not let the next run take its number again (NAME@N would then name another backup).
    const max = Math.max((this.stmt('maxGen').get() as { g: number | null }).g ?? 0, Number(this.getMeta('last_generation') ?? 0));
    const resume = tryResume && max > 0 && !this.stmt('finished').get(max);
    return { generation: resume ? max : max + 1, resume };
  }

  /** Starts the generation this run writes (see nextGeneration). */
  startGeneration(tryResume: boolean, source: string): number {
    const { generation, resume } = this.nextGeneration(tryResume);
    this.generation = generation;
    this.write(() => this.stmt('startGen').run(this.generation, Date.now() / 1000, source));
    this.setMeta('last_generation', String(this.generation));
    this.commit();
    log.debug({ generation: this.generation, resumed: resume }, 'generation');
    return this.generation;
  }

  // ---- questions ------------------------------------------------------------------------

  /**
   * Whether a file with this key (path, size, mtime, inode, encoding) and ctime needs work. A
   * reused row also gives the user xattrs it was stored with (null: not known, an older row):
   * with the ctime unchanged they are unchanged too — setting or removing one moves the ctime.
   */
  fileDecision(key: Buffer, ctimeNs: bigint): FileDecision {
    const row = this.stmt('get').get(this.k(key), KIND_CODE.file) as FileRow | undefined;
    if (!row) return { action: 'upload' };
    const enc = row.enc ?? undefined;
    if (row.ctimeNs === String(ctimeNs)) return { action: 'reuse', cap: row.cap, enc, xattrs: row.xattrs };
    return row.sha256 ? { action: 'rehash', cap: row.cap, sha256: row.sha256, enc } : { action: 'upload' };
  }

  /**
   * A cap under which these contents (SHA-256 of the plaintext) are stored already, preferring
   * the encoding `prefer`; any is a faithful copy (the edge says how to read it).
   */
  knownContent(sha256: Buffer, prefer: StoredAs): { cap: string; enc: StoredAs } | undefined {
    return (this.stmt('contentAs').get(sha256, prefer, ...this.gridParams()) ?? this.stmt('content').get(sha256, ...this.gridParams())) as { cap: string; enc: StoredAs } | undefined;
  }

  /**
   * Whether any stored contents may have this plaintext size: if not, no file of that size can
   * be found by its contents, and hashing it before the upload would be wasted. Rows written
   * before sizes were kept count as any size (asked once per run: rows only ever gain one).
   */
  mayKnowSize(size: number): boolean {
    this.unsized ??= this.stmt('unsized').get() !== undefined;
    return this.unsized || this.stmt('sized').get(size) !== undefined;
  }

  /** The cap of a symlink or directory known under this key. */
  knownCap(key: Buffer, kind: 'symlink' | 'dir'): string | undefined {
    return (this.stmt('get').get(this.k(key), KIND_CODE[kind]) as FileRow | undefined)?.cap;
  }

  /** The dircap of a directory whose listing (cache/keys.ts ListingKey) is known. */
  knownListing(key: Buffer): string | undefined {
    return (this.stmt('get').get(this.k(key), LISTING) as FileRow | undefined)?.cap;
  }

  // ---- answers: what the run did ----------------------------------------------------------

  /**
   * This run used the row as it is (raises it to the current generation; buffered). A file
   * row can learn more: `ctimeNs`, for contents re-hashed and found unchanged (the new ctime
   * is kept); `xattrs`, the user xattrs read this time (see EntryCache.fileDecision).
   */
  didReuse(key: Buffer, learnt?: { ctimeNs?: bigint; xattrs?: string }): void {
    if (learnt && (learnt.ctimeNs !== undefined || learnt.xattrs !== undefined)) {
      const ctime = learnt.ctimeNs === undefined ? null : String(learnt.ctimeNs);
      this.write(() => this.stmt('useFile').run(this.generation, ctime, learnt.xattrs ?? null, this.k(key)));
      return;
    }
    this.uses.push(this.k(key));
    if (this.uses.length >= EntryCache.USE_BATCH) this.flushUses();
  }

  /**
   * This run uploaded (or created, or found by its contents) the entry as `cap`; files keep
   * their ctime, the hash of their contents, how those were stored, their user xattrs when
   * they were read whole ('' for none), and the size of their plaintext.
   */
  didUpload(key: Buffer, kind: EntryKind, cap: string, f?: { ctimeNs: bigint; sha256: Buffer; enc: StoredAs; xattrs?: string; size: number }): void {
    this.write(() => this.stmt('put').run(this.k(key), KIND_CODE[kind], cap, this.generation, f ? String(f.ctimeNs) : null, f?.sha256 ?? null, f?.enc ?? null, f?.xattrs ?? null, Date.now() / 1000, f?.size ?? null));
  }

  /**
   * A directory's listing gave `cap`, and `refs` are the rows it stands for (its files' and
   * symlinks' rows and its directory row): reusing the listing later does not touch them, and
   * cleanup raises them to the listing's generation before it deletes anything.
   */
  didList(key: Buffer, cap: string, refs: readonly Buffer[]): void {
    this.write(() => this.stmt('putListing').run(this.k(key), cap, this.generation, Date.now() / 1000, encodeRefs(this.suffix.length ? refs.map((r) => this.k(r)) : refs)));
  }

  /** Whether a finished backup already consumed this queue file (same path, size, mtime, inode). */
  queueConsumed(stamp: QueueStamp): boolean {
    const raw = this.getMeta('queue_consumed');
    if (!raw) return false;
    let m: Partial<QueueStamp>;
    try {
      m = JSON.parse(raw) as Partial<QueueStamp>;
    } catch {
      return false;
    }
    return m.path === stamp.path && m.size === stamp.size && m.mtimeMs === stamp.mtimeMs && m.ino === stamp.ino;
  }

  markQueueConsumed(stamp: QueueStamp): void {
    this.setMeta('queue_consumed', JSON.stringify({ path: stamp.path, size: stamp.size, mtimeMs: stamp.mtimeMs, ino: stamp.ino }));
  }

  /** Writes the buffered generation bumps, in one transaction of their own. */
  flushUses(): void {
    if (!this.uses.length) return;
    // In key order, consecutive updates touch the same B-tree pages.
    const keys = this.uses.sort(Buffer.compare);
    this.uses = [];
    this.commit();
    try {
      this.db.transaction(() => {
        for (const k of keys) this.stmt('use').run(this.generation, k, this.generation);
      })();
    } catch (e) {
      throw describeDbError(this.path, e);
    }
  }

  /**
   * Records a finished backup; every row the run used carries its generation first. `adopt`:
   * ids of older backups rows of the same series recorded under another name (backup/name.ts
   * legacyMembers), renamed in the same batch.
   */
  addBackup(b: { name: string; source: string; cap: string; adopt?: readonly number[] }): void {
    this.flushUses();
    for (const id of b.adopt ?? []) this.write(() => this.stmt('rename').run(b.name, id));
    this.write(() => this.stmt('addBackup').run(b.name, b.source, b.cap, this.generation, Date.now() / 1000));
  }

  // ---- finished backups and generations (list, cleanup, check) --------------------------

  /** Finished backups, oldest first: by generation (the clock may have been set back). */
  listBackups(): BackupRow[] {
    return this.stmt('backups').all() as BackupRow[];
  }

  /** The root caps of the backups recorded under `name` (one series). */
  seriesCaps(name: string): Set<string> {
    return new Set(this.stmt('seriesCaps').pluck().all(name) as string[]);
  }

  /** Generations with cache rows or a start record but no finished backup (interrupted runs). */
  danglingGenerations(): number[] {
    const rows = this.db
      .prepare(
        `SELECT g FROM (SELECT DISTINCT generation AS g FROM entries UNION SELECT generation FROM generations)
         WHERE g NOT IN (SELECT generation FROM backups) ORDER BY g`,
      )
      .all() as { g: number }[];
    return rows.map((r) => r.g);
  }

  /**
   * Cache rows of a generation: kind, the relative path for files and symlinks (keys start with
   * it; directory keys are bare hashes, so no path), cap.
   */
  *entriesOf(generation: number): Generator<{ kind: EntryKind | 'listing'; path?: string; cap: string }> {
    const kinds = ['file', 'symlink', 'dir', 'listing'] as const;
    for (const r of this.db.prepare('SELECT kind, key, cap FROM entries WHERE generation = ? ORDER BY key').iterate(generation) as Iterable<{ kind: number; key: Buffer; cap: string }>) {
      const kind = kinds[r.kind]!;
      yield { kind, path: kind === 'dir' ? undefined : keyPath(r.key), cap: r.cap };
    }
  }

  /**
   * Forgets generations: deletes their cache rows, backups rows and start records (each one
   * given, or all up to each). Rows a newer run used — directly, or through a directory's
   * listing row — stay (cache/forget.ts). `dryRun`: only counts, exactly.
   */
  forgetGenerations(generations: readonly number[], upTo: boolean, dryRun = false): { entries: number; backups: number } {
    this.commit();
    this.flushUses();
    try {
      return forgetGenerations(this.db, generations, upTo, dryRun);
    } catch (e) {
      throw describeDbError(this.path, e);
    }
  }

  /** Records a check of `cap` and what it found wrong (null: healthy): in every backups row with that cap (they are one object on the grid). */
  markChecked(cap: string, problem: string | null = null, ts = Date.now() / 1000): void {
    try {
      this.stmt('checked').run(ts, problem, cap);
    } catch (e) {
      throw describeDbError(this.path, e);
    }
  }

  /**
   * Forgets what the grid does not have (`check` found it unrecoverable; cache/lost.ts): the
   * rows of this run's grid with any of these caps, in one transaction. Returns how many.
   */
  forgetCaps(caps: Iterable<string>): number {
    this.commit();
    this.flushUses();
    try {
      return forgetRows(this.db, { caps: [...caps] }, gridRows(this.grid));
    } catch (e) {
      throw describeDbError(this.path, e);
    }
  }

  /** Forgets every row of this run's grid (its root is not there: nothing of it is trusted). */
  forgetGrid(): number {
    this.commit();
    this.uses = [];
    try {
      return forgetRows(this.db, 'all', gridRows(this.grid));
    } catch (e) {
      throw describeDbError(this.path, e);
    }
  }

  /** A value of the meta table (cache/grid.ts keeps its record there). */
  getMeta(key: string): string | undefined {
    return (this.stmt('meta').get(key) as { value: string } | undefined)?.value;
  }

  /** Sets a value of the meta table, in the current batch. */
  setMeta(key: string, value: string): void {
    this.write(() => this.stmt('setMeta').run(key, value));
  }

  // ---- transactions ---------------------------------------------------------------------

  /** Runs a write inside the current batch, committing when the batch is full or old. */
  private write<T>(fn: () => T): T {
    if (!this.db.inTransaction) {
      this.db.exec('BEGIN');
      this.txStarted = Date.now();
      this.pending = 0;
      this.timer ??= setInterval(() => this.maybeCommit(), Math.max(50, Math.min(this.commitMs, 1000)));
      this.timer.unref();
    }
    let result: T;
    try {
      result = fn();
    } catch (e) {
      throw describeDbError(this.path, e);
    }
    this.pending++;
    this.maybeCommit();
    return result;
  }

  private maybeCommit(): void {
    if (!this.db.inTransaction) return;
    if (this.pending >= this.commitQueries || Date.now() - this.txStarted >= this.commitMs) this.commit();
  }

  commit(): void {
    if (!this.db.inTransaction) return;
    try {
      this.db.exec('COMMIT');
    } catch (e) {
      throw describeDbError(this.path, e);
    }
    this.pending = 0;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.db.open) {
      this.commit();
      this.flushUses();
      this.db.close();
    }
  }
}
