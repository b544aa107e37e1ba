/**
 * Writes of the entry cache grouped into transactions: a batch commits when it holds
 * `queries` writes or is `ms` old (a timer checks the age while no write comes), so an
 * interrupted run loses at most one batch and a busy one pays one fsync per batch, not per row.
 */
import type Database from 'better-sqlite3';
import { describeDbError } from './db-errors.js';

export class WriteBatch {
  private pending = 0;
  private started = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly queries: number,
    private readonly ms: number,
  ) {}

  /** Runs a write inside the current batch, committing when the batch is full or old. */
  write<T>(fn: () => T): T {
    if (!this.db.inTransaction) {
      this.db.exec('BEGIN');
      this.started = Date.now();
      this.pending = 0;
      this.timer ??= setInterval(() => this.maybeCommit(), Math.max(50, Math.min(this.ms, 1000)));
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
    if (this.pending >= this.queries || Date.now() - this.started >= this.ms) this.commit();
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

  /** No more age checks (the cache is closing; it commits the last batch itself). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
