/**
 * The file stage: files and symlinks (restic's fileSaver). It owns its worker pool, the xz
 * encoders, the contents in flight (backup/contents.ts) and the hard-link groups of the run;
 * the queue reader only asks it `save(entry, stat)` and waits on `room()`.
 *
 * An unchanged file or symlink is answered at once, from the cache, with its Child — no job,
 * no promise. Anything else becomes a job and `save` gives the promise of its Child:
 *
 * - the cache decides (EntryCache.fileDecision, file-plan.ts): reuse the cap; re-hash locally
 *   when only the ctime moved (chmod, chown, ACLs — or contents changed with the mtime put
 *   back) and reuse the cap if the contents are the same; or upload (upload.ts);
 * - a file that changed while it was read, or was modified too recently to trust, is uploaded
 *   but not cached, with a warning;
 * - a file with more than one link is marked with the first link's path; the later links of
 *   the group take the first one's cap (its contents go up once).
 *
 * Errors are typed where they happen: a failed read of the entry itself is a SourceError (the
 * entry is left out, the job's Child is null); anything else (the gateway beyond its retries,
 * the cache) is fatal: the stage hands it to `fail`, which stops the run. Once the run's signal
 * is aborted, jobs not started are dropped and `save` and `room` fail at once.
 */
import { readlinkSync } from 'node:fs';
import { Readable } from 'node:stream';
import { symlinkKey } from '../cache/keys.js';
import type { Child } from '../core/child.js';
import { Pool } from '../core/pool.js';
import { fromSource, SourceError } from '../errors.js';
import { log, logs } from '../log.js';
import { showPath } from '../scan/phase1.js';
import { encodePath, isSymlinkEntry, type QueueEntry } from '../scan/queue-codec.js';
import { ContentsInFlight } from './contents.js';
import type { EventSink } from './events.js';
import { absPath, childOf, FilePlan, planFile, type ReadXattrs } from './file-plan.js';
import type { FileCache, Uploader } from './ports.js';
import type { TokenBucket } from '../core/ratelimit.js';
import { leaveOut } from './skip.js';
import type { EntryStat } from './source-stat.js';
import { Sender, type XzChoice } from './upload.js';

/** An mtime this far ahead of the clock is "in the future", not "modified just now". */
const FUTURE_NS = 60_000_000_000n;

export interface FileStageOptions {
  /** The source directory, absolute. */
  root: Buffer;
  client: Uploader;
  /** Undefined with deduplication disabled: nothing is looked up or remembered. */
  cache?: FileCache;
  xz: XzChoice;
  /** Jobs at a time (`operation.concurrency`). */
  concurrency: number;
  /** Files compressed at once (`encoders`; each preset-6 encoder holds ~94 MiB). */
  encoders: number;
  /** Larger files are hashed before upload to look their contents up. */
  prehash: boolean;
  bytes?: TokenBucket;
  /** A file modified less than this long before it was read is uploaded but not cached. */
  trustNs: bigint;
  readXattrs?: ReadXattrs;
  emit: EventSink;
  /** The run's one stop. */
  signal: AbortSignal;
  /** Stops the run with a fatal error (the first one stands). */
  fail: (e: unknown) => void;
  /** Nanoseconds since the epoch (tests give their own). */
  clock?: () => bigint;
}

/** A file's or symlink's Child: now, or when its job is done; null when it was left out. */
export type Saved = Child | null | Promise<Child | null>;

const wallClock = () => BigInt(Date.now()) * 1_000_000n;

export class FileStage {
  private readonly pool: Pool;
  private readonly encoders: Pool;
  private readonly sender: Sender;
  private readonly contents = new ContentsInFlight();
  /** Files with more than one link, by device and inode: the first one's path and result. */
  private readonly hardlinks = new Map<string, { path: string; done: Promise<Child | null> }>();
  private readonly clock: () => bigint;

  constructor(private readonly o: FileStageOptions) {
    this.pool = new Pool('files', o.concurrency, o.signal);
    // Each xz encoder at preset 6 holds ~94 MiB: no more of them than asked, however many uploads.
    this.encoders = new Pool('xz', o.encoders, o.signal);
    this.sender = new Sender({ root: o.root, client: o.client, cache: o.cache, xz: o.xz, encoders: this.encoders, contents: this.contents, prehash: o.prehash, bytes: o.bytes, emit: o.emit });
    this.clock = o.clock ?? wallClock;
  }

  /** A file's or a symlink's Child (as the entry says it is; `st` is its lstat now). */
  save(e: QueueEntry, st: EntryStat): Saved {
    if (isSymlinkEntry(e)) return this.symlink(e, st);
    if (st.nlink > 1n) return this.linked(e, st);
    const plan = planFile(this.o, e, st);
    return plan instanceof FilePlan ? this.job(() => this.work(e, st, plan)) : plan;
  }

  /** Undefined while the stage has room for more; otherwise the wait for it (the reader's back-pressure). */
  room(): Promise<void> | undefined {
    return this.pool.room();
  }

  /** Settles once every job started has ended. */
  settled(): Promise<void> {
    return this.pool.idle();
  }

  /** Jobs running or waiting, and files being compressed or waiting for an encoder: what the stage is doing. */
  get load(): { jobs: number; encoding: number } {
    return { jobs: this.pool.load, encoding: this.encoders.load };
  }

  /** Contents registered in flight (none once the stage is settled). */
  get inFlight(): number {
    return this.contents.registered;
  }

  private job(fn: () => Promise<Child | null>): Promise<Child | null> {
    const p = this.pool.add(fn);
    // A job's failure that is not its entry's own ends the run; the stage reports it.
    p.then(undefined, this.o.fail);
    return p;
  }

  /**
   * A file with more than one link: the group's first is planned and done as any file (its
   * edge names itself); the later ones wait for it and take its cap.
   */
  private linked(e: QueueEntry, st: EntryStat): Promise<Child | null> {
    const id = `${st.dev}:${st.ino}`;
    const first = this.hardlinks.get(id);
    if (!first) {
      const path = encodePath(e.path);
      const done = this.job(() => this.planned(e, st, path));
      this.hardlinks.set(id, { path, done });
      return done;
    }
    return this.job(async () => {
      const done = await first.done.catch(() => null);
      if (!done) return this.planned(e, st);
      this.o.emit({ type: 'file-reused', path: e.path, size: Number(st.size), why: 'linked' });
      const xz = done.metadata.enc === 'xz';
      const size = xz && typeof done.metadata.size === 'string' ? Number(done.metadata.size) : undefined;
      return childOf(e, done.cap, { mtimeNs: st.mtimeNs, enc: xz ? 'xz' : undefined, size, xattrs: this.o.readXattrs?.(absPath(this.o.root, e.path), st), hardlink: first.path });
    });
  }

  /** A file's work inside a job: planned there, and done. */
  private planned(e: QueueEntry, st: EntryStat, hardlink?: string): Promise<Child | null> {
    const plan = planFile(this.o, e, st, hardlink);
    return plan instanceof FilePlan ? this.work(e, st, plan) : Promise.resolve(plan);
  }

  /** A file the cache does not know as it is: re-hashed (only the ctime moved) or uploaded. */
  private async work(e: QueueEntry, st: EntryStat, plan: FilePlan): Promise<Child | null> {
    const { cache, emit } = this.o;
    const abs = absPath(this.o.root, e.path);
    const shown = showPath(e.path);
    const { decision, key, learnt } = plan;
    try {
      if (decision.action === 'rehash' && (await this.sender.hash(abs, shown, st))?.equals(decision.sha256)) {
        cache!.didReuse(key, { ctimeNs: st.ctimeNs, xattrs: learnt });
        return plan.reused('rehashed');
      }
      const readStart = this.clock();
      const up = await this.sender.send(abs, shown, st, plan.choice);
      const row = { ctimeNs: st.ctimeNs, sha256: up.sha256, enc: up.enc, xattrs: learnt, size: Number(st.size) };
      // The row key when the file is cached as it is now (not for a member of a link group, whose
      // edge depends on another entry, nor when its xattrs could not be read).
      let cached: Buffer | undefined = cache && plan.whole ? key : undefined;
      if (up.changed) {
        cached = undefined;
        emit({ type: 'file-not-cached', path: e.path, why: 'changed' });
        log.warn({ path: encodePath(e.path) }, `${shown} changed while it was read; uploaded as read, not cached`);
      } else if (st.mtimeNs > readStart + FUTURE_NS) {
        // An mtime in the future says nothing about recent writes: a later write sets it to now,
        // which changes the key. Cached; the run counts them and warns once.
        emit({ type: 'future-mtime', path: e.path });
        cache?.didUpload(key, 'file', up.cap, row);
      } else if (st.mtimeNs > readStart - this.o.trustNs) {
        cached = undefined;
        emit({ type: 'file-not-cached', path: e.path, why: 'recent' });
        log.warn({ path: encodePath(e.path) }, `${shown} was modified too recently to trust; uploaded, not cached`);
      } else cache?.didUpload(key, 'file', up.cap, row);
      this.contents.release(up);
      if (up.how === 'known') emit({ type: 'file-deduplicated', path: e.path, size: up.size });
      else emit({ type: 'file-uploaded', path: e.path, size: up.size, stored: up.how, streamed: up.streamed });
      if (logs('noise')) log.noise({ path: encodePath(e.path), stored: up.how }, up.how === 'known' ? 'contents already stored' : 'uploaded');
      return childOf(e, up.cap, plan.edge(up.enc, up.size), cached);
    } catch (err) {
      if (err instanceof SourceError) return leaveOut(emit, e.path, err);
      throw err;
    }
  }

  /** A symlink: its target is stored as a small file. Known targets are answered at once. */
  private symlink(e: QueueEntry, st: EntryStat): Saved {
    const { cache, emit } = this.o;
    const abs = absPath(this.o.root, e.path);
    let target: Buffer;
    try {
      target = fromSource(showPath(e.path), () => readlinkSync(abs, { encoding: 'buffer' }));
    } catch (err) {
      if (err instanceof SourceError) return leaveOut(emit, e.path, err);
      throw err;
    }
    const key = symlinkKey(e.path, target);
    const extras = { mtimeNs: st.mtimeNs, xattrs: this.o.readXattrs?.(abs, st) };
    const row = extras.xattrs !== null ? key : undefined;
    const known = cache?.knownCap(key, 'symlink');
    if (known) {
      cache!.didReuse(key);
      emit({ type: 'symlink-reused', path: e.path });
      return childOf(e, known, extras, row);
    }
    return this.job(async () => {
      const cap = await this.o.client.putFile(() => Readable.from([target]));
      emit({ type: 'sent', bytes: target.length });
      emit({ type: 'symlink-uploaded', path: e.path });
      cache?.didUpload(key, 'symlink', cap);
      return childOf(e, cap, extras, cache ? row : undefined);
    });
  }
}
