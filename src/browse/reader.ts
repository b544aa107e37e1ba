/**
 * Reading backups, for the commands that answer questions about them (find, stats, dump, ls)
 * and for a server that would call them (`serve`): one client, the entry cache when there is
 * one (its backups rows, its store of listings, the plaintext sizes its file rows keep), and
 * the walks' DirSource reading through that store.
 *
 * The cache is opened for writing when it can be (listings read from the grid are stored), else
 * read-only (a read-only disk, or `readonly`); it is never created: with no cache file, every
 * listing comes from the grid. The cache lock is not taken — a nightly backup may run
 * meanwhile; SQLite's WAL lets both read, and a listing that cannot be stored while the
 * backup holds the write lock is simply not stored.
 */
import { existsSync } from 'node:fs';
import { EntryCache } from '../cache/db.js';
import { cacheWritable } from '../cache/readonly.js';
import { ListingStore, PlainSizes } from '../cache/trees.js';
import { clientFor } from '../config/client.js';
import type { Config } from '../config/load.js';
import { log } from '../log.js';
import type { TahoeClient } from '../tahoe/client.js';
import { knownBackups, type BackupRef } from './backups.js';
import type { SizeSource } from './entry-info.js';
import { GridDirs } from './listing.js';

export interface ReaderOptions {
  /** Aborting it stops requests in flight and every walk at its next step. */
  signal?: AbortSignal;
  /** Open the entry cache read-only (store no listing), whatever it allows. */
  readonly?: boolean;
  /** The client to use (default: one built from the configuration, closed with the reader). */
  client?: TahoeClient;
}

export class BackupReader {
  private constructor(
    readonly config: Config,
    readonly client: TahoeClient,
    /** Directory listings: the cache's store first, then the grid. */
    readonly dirs: GridDirs,
    /** Plaintext sizes of xz files the cache knows. */
    readonly sizes: SizeSource | undefined,
    readonly cache: EntryCache | undefined,
    readonly signal: AbortSignal,
    private readonly ownClient: boolean,
  ) {}

  static async open(config: Config, opts: ReaderOptions = {}): Promise<BackupReader> {
    const cache = await openCacheForReading(config.source.entry_cache.path, opts.readonly ?? false);
    const signal = opts.signal ?? new AbortController().signal;
    const client = opts.client ?? clientFor(config, { signal });
    try {
      const store = cache ? new ListingStore(cache) : undefined;
      return new BackupReader(config, client, new GridDirs(client, store), cache ? new PlainSizes(cache) : undefined, cache, signal, !opts.client);
    } catch (e) {
      cache?.close();
      if (!opts.client) await client.close();
      throw e;
    }
  }

  /** Every backup known (entry cache, result file, lafs dir), newest first (browse/backups.ts). */
  backups(): Promise<BackupRef[]> {
    return knownBackups(this.config, this.cache?.listBackups(), this.client);
  }

  async close(): Promise<void> {
    try {
      this.cache?.close();
    } finally {
      if (this.ownClient) await this.client.close();
    }
  }
}

/**
 * The entry cache at `path` for reading: writable when the file and its directory are (so
 * listings can be stored), read-only otherwise — and read-only too when it cannot be opened
 * for writing now (an older schema whose upgrade waits on a running backup). Undefined when
 * there is no cache.
 */
async function openCacheForReading(path: string | null, readonly: boolean): Promise<EntryCache | undefined> {
  if (!path || !existsSync(path)) return undefined;
  if (!readonly && cacheWritable(path)) {
    try {
      return EntryCache.open(path);
    } catch (e) {
      log.debug(`entry cache ${path}: opened read-only (${(e as Error).message})`);
    }
  }
  return EntryCache.open(path, { readonly: true });
}
