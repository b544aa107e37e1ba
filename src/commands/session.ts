/**
 * How a command opens what it needs, in the shape of borg's `@with_repository` and kopia's
 * repository session: `withSession(config, needs, fn)` opens what `needs` names — the one stop
 * (SIGINT/SIGTERM, wired here and nowhere else), the progress line, the entry cache's lock, the
 * entry cache (writable, read-only, or writable when it can be), the gateway client, the reader
 * of backups — runs `fn` with them, and closes everything in the reverse order on every path:
 * success, a typed error, an interrupt. The command's exit code is `fn`'s, or the error's
 * (README "Exit codes"); once the stop has fired, the stop's reason is the outcome, whatever
 * failed on the way out.
 *
 * Opening order: stop, progress, lock, cache, client, reader. Closing order: progress ended,
 * reader, clients, cache, lock released, signal handlers removed.
 */
import { existsSync } from 'node:fs';
import { BackupReader } from '../browse/reader.js';
import { EntryCache } from '../cache/db.js';
import { lockCache } from '../cache/lock.js';
import { cacheWritable } from '../cache/readonly.js';
import { required, type Config } from '../config/load.js';
import { Stop, type StopSignalName } from '../core/stop.js';
import { UsageError } from '../errors.js';
import { log } from '../log.js';
import { Progress } from '../progress.js';
import type { TahoeClient } from '../tahoe/client.js';
import { clientFor } from '../config/client.js';
import type { ClientExtras } from '../tahoe/factory.js';

/** The entry cache a command needs. */
export interface CacheNeed {
  /**
   * `write`: opened for writing. `read`: read-only (nothing is written, and a cache on a
   * read-only disk opens too). `write-if-possible`: writable when the file and its directory
   * are, else read-only (`Session.cacheReadonly` says so; the command warns of what it cannot record).
   */
  mode: 'write' | 'read' | 'write-if-possible';
  /**
   * Without a cache file (or without source.entry_cache.path): `error` — one usage line, there
   * is nothing to work on; `skip` — no cache; `create` — a new one (a backup's first night).
   */
  missing: 'error' | 'skip' | 'create';
  /** The command, for messages: "source.entry_cache.path is required for 'list'". */
  command: string;
  /** What it would do, for "nothing to clean up" (default: the command). */
  verb?: string;
  /** The cache file (default: source.entry_cache.path); null: none. */
  path?: string | null;
  /** How often a writing run commits (a backup's `source.entry_cache.commit_after`). */
  commitAfter?: { queries: number; seconds: number };
}

export interface Needs {
  /**
   * SIGINT/SIGTERM stop the command: its signal aborts (the client's requests, walks, pools
   * stop) and it ends with one line and 130/143. Without it a signal ends the process as it
   * would any program (same exit codes, no line) — for commands with nothing that would notice
   * the signal (a local walk, a short cache read).
   */
  stop?: boolean;
  /**
   * When the stop fired and `fn` returned all the same: `throw` (default) ends the command with
   * the stop's reason; `return` lets `fn`'s result stand — for a command whose stop is its
   * normal end (`grid`), or whose result already says how it ended (a backup whose after hook
   * was interrupted).
   */
  afterStop?: 'throw' | 'return';
  /** The progress line: --progress / --no-progress (undefined: shown when stderr is a terminal). */
  progress?: { flag: boolean | undefined };
  /** The entry cache's lock (taken before the cache is opened; only when there is a cache path). */
  lock?: boolean;
  cache?: CacheNeed;
  /** A gateway client bound to the stop (more: `openClient`). */
  client?: boolean | ClientExtras;
  /** A reader of backups (browse/reader.ts: its own client and the cache as listings store), bound to the stop. */
  reader?: boolean;
}

export interface Session {
  readonly config: Config;
  readonly stop: Stop;
  /** The stop's signal (never fires without `needs.stop`). */
  readonly signal: AbortSignal;
  readonly progress?: Progress;
  readonly cache?: EntryCache;
  /** The cache was opened read-only although the command would have written it (`write-if-possible`). */
  readonly cacheReadonly: boolean;
  readonly client?: TahoeClient;
  readonly reader?: BackupReader;
  /** Another client bound to the stop, closed with the session (a backup's own retry budget and rate limit). */
  openClient(extras?: ClientExtras): TahoeClient;
  /** Closes the cache now (a backup closes it before its after hook, which may copy it). Idempotent. */
  closeCache(): void;
}

/** What a Session holds and how each piece is closed, in the order they were opened. */
class Resources implements Session {
  readonly stop = new Stop();
  progress?: Progress;
  cache?: EntryCache;
  cacheReadonly = false;
  client?: TahoeClient;
  reader?: BackupReader;
  private readonly clients: TahoeClient[] = [];
  private release?: () => Promise<void>;
  private handlers: [StopSignalName, () => void][] = [];

  constructor(readonly config: Config) {}

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** SIGINT and SIGTERM, once each, for the whole command. */
  listen(): void {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, () => this.stop.interrupt(sig)]);
    for (const [sig, h] of this.handlers) process.on(sig, h);
  }

  async open(needs: Needs): Promise<void> {
    if (needs.stop) this.listen();
    if (needs.progress) this.progress = Progress.create(needs.progress.flag);
    if (needs.cache) await this.openCache(needs.cache, Boolean(needs.lock));
    if (needs.client) this.client = this.openClient(needs.client === true ? {} : needs.client);
    if (needs.reader) this.reader = await BackupReader.open(this.config, { signal: this.signal });
  }

  private async openCache(need: CacheNeed, lock: boolean): Promise<void> {
    const configured = need.path === undefined ? this.config.source.entry_cache.path : need.path;
    const path = need.missing === 'error' ? required(configured, 'source.entry_cache.path', need.command) : configured;
    if (!path) return;
    const exists = existsSync(path);
    if (!exists && need.missing === 'error') throw new UsageError(`source.entry_cache.path: ${path} does not exist (nothing to ${need.verb ?? need.command}; has a backup run?)`);
    if (!exists && need.missing === 'skip') return;
    if (lock) this.release = await lockCache(path);
    let readonly = need.mode === 'read';
    if (need.mode === 'write-if-possible' && exists && !cacheWritable(path)) {
      // The command says what it cannot record (check: its check times).
      readonly = this.cacheReadonly = true;
    }
    this.cache = EntryCache.open(path, { readonly, commitAfter: need.commitAfter });
  }

  openClient(extras: ClientExtras = {}): TahoeClient {
    const client = clientFor(this.config, { ...extras, signal: this.signal });
    this.clients.push(client);
    return client;
  }

  closeCache(): void {
    const cache = this.cache;
    this.cache = undefined;
    cache?.close();
  }

  /** Closes everything opened, newest first; every step runs; the first failure is returned. */
  async close(): Promise<unknown> {
    let first: unknown;
    const step = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        first ??= e;
      }
    };
    await step(() => this.progress?.end());
    await step(() => this.reader?.close());
    for (const c of this.clients.splice(0).reverse()) await step(() => c.close());
    await step(() => this.closeCache());
    await step(() => this.release?.());
    for (const [sig, h] of this.handlers.splice(0)) process.off(sig, h);
    return first;
  }
}

/**
 * Opens what `needs` names, runs `fn`, closes it all (see the file's comment). A failure while
 * closing is the outcome only when nothing failed before it.
 */
export async function withSession<T>(config: Config, needs: Needs, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = new Resources(config);
  let result: T;
  try {
    await s.open(needs);
    result = await fn(s);
  } catch (e) {
    const closing = await s.close();
    if (closing !== undefined) log.debug({ err: String(closing) }, 'closing after a failure also failed');
    throw s.stop.stopped ? s.signal.reason : e;
  }
  const closing = await s.close();
  if (s.stop.stopped && (closing !== undefined || needs.afterStop !== 'return')) throw s.signal.reason;
  if (closing !== undefined) throw closing;
  return result;
}
