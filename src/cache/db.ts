/**
 * The entry cache (SQLite through better-sqlite3): what is known about local entries and the
 * caps they were uploaded as, the generation that last used each row, and finished backups.
 * Callers ask it questions and never see rows; its statements are in cache/sql.ts, the opening
 * (0600: it holds caps; WAL; migrations) in cache/open.ts. Writes are batched in transactions
 * (`commit_after`: so many statements or seconds; cache/batch.ts): a crash loses at most the
 * last batch, never the database.
 *
 * Generation bumps of reused rows are different: an unchanged tree bumps every row, on keys
 * scattered all over the table, and committing those 50 at a time rewrote ~100 pages per
 * commit. They are buffered and written in large batches instead (and always before a
 * backup is recorded). Losing buffered bumps in a crash costs nothing: the next run bumps
 * the rows again.
 */
import Database from 'better-sqlite3';
import { CacheError } from '../errors.js';
import { WriteBatch } from './batch.js';
import { describeDbError } from './db-errors.js';
import { log } from '../log.js';
import type { EntryKind } from '../core/child.js';
import { encodeRefs, forgetGenerations, LISTING } from './forget.js';
import { gridRows, gridSuffix } from './grid-keys.js';
import { keyPath } from './keys.js';
import { forgetRows } from './lost.js';
import { openWritable } from './open.js';
import { openReadonly } from './readonly.js';
import { SQL } from './sql.js';

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

export class EntryCache {
  private readonly db: Database.Database;
  /** Writes grouped into transactions (cache/batch.ts). */
  private readonly batch: WriteBatch;
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
    this.batch = new WriteBatch(db, path, opts.commitAfter?.queries ?? 50, (opts.commitAfter?.seconds ?? 10) * 1000);
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
    return new EntryCache(path, opts.readonly ? openReadonly(path) : openWritable(path), opts);
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

  /** The attribute memo the last walk kept (scan/attr-memo.ts: its text, opaque here). */
  attrMemo(): string | undefined {
    return this.getMeta('attr_memo');
  }

  /** Keeps tonight's walk's attribute memo for the next one (in the current batch). */
  keepAttrMemo(text: string): void {
    this.setMeta('attr_memo', text);
  }

  /** A value of the meta table (cache/grid.ts keeps its record there). */
  getMeta(key: string): string | undefined {
    return (this.stmt('meta').get(key) as { value: string } | undefined)?.value;
  }

  /** Sets a value of the meta table, in the current batch. */
  setMeta(key: string, value: string): void {
    this.write(() => this.stmt('setMeta').run(key, value));
  }

  /** Runs a write inside the current batch (cache/batch.ts). */
  private write<T>(fn: () => T): T {
    return this.batch.write(fn);
  }

  commit(): void {
    this.batch.commit();
  }

  close(): void {
    this.batch.stop();
    if (this.db.open) {
      this.commit();
      this.flushUses();
      this.db.close();
    }
  }
}
