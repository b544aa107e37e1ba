/**
 * A whole backup run: phase 1 (unless the queue can be reused), then phase 2 with the entry
 * cache, then the `backups` row. The command prints; this module does the work.
 */
import { basename } from 'node:path';
import { statSync, type Stats } from 'node:fs';
import { EntryCache } from '../cache/db.js';
import type { Config } from '../config/load.js';
import { InterruptedError } from '../errors.js';
import { log } from '../log.js';
import { compileRules, compileSizeRules } from '../scan/filters.js';
import { buildQueue, type ScanReport } from '../scan/phase1.js';
import { planQueue } from '../scan/plan.js';
import { assertWritableDirCap } from '../tahoe/caps.js';
import { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';
import type { Progress } from '../progress.js';
import { readQueueTotals } from '../scan/queue-file.js';
import { emptyRunStats, entriesDone, type ReadXattrs, type RunStats, type UploadContext } from './context.js';
import { encodingId, xzSettings } from './encoder.js';
import { Limiter } from './limiter.js';
import { StoppedError, uploadQueue } from './pipeline.js';
import { parseRate } from './ratelimit.js';

/** Set by the command's signal handlers; the run checks it and stops cleanly. */
export class StopRequest {
  signal?: 'SIGINT' | 'SIGTERM';
  private listeners: (() => void)[] = [];
  request(signal: 'SIGINT' | 'SIGTERM'): void {
    this.signal ??= signal;
    for (const l of this.listeners) l();
  }
  onRequest(l: () => void): void {
    this.listeners.push(l);
  }
}

export interface BackupPlan {
  config: Config;
  source: string;
  queuePath: string;
  forceQueue: boolean;
  stop: StopRequest;
  readXattrs?: ReadXattrs;
  readMeta?: Parameters<typeof buildQueue>[0]['readMeta'];
  /** Shown on a terminal (or with --progress). */
  progress?: Progress;
}

export interface BackupOutcome {
  cap?: string;
  generation?: number;
  scan?: ScanReport;
  stats: RunStats;
  /** Entries were left out (unreadable, vanished): exit code 3. */
  incomplete: boolean;
  elapsedMs: number;
}

/**
 * Everything the configuration implies that can be wrong, checked before any work is done:
 * a bad rule or rate must not surface after phase 1 has already written the queue.
 */
export function validateForBackup(config: Config): void {
  compileRules(config.filter);
  compileSizeRules(config.destination.encoding.xz.path_filter);
  parseRate(config.operation.rate_limit.bytes, 'operation.rate_limit.bytes');
  parseRate(config.operation.rate_limit.objects, 'operation.rate_limit.objects');
  const dir = config.destination.result.append_to_lafs_dir;
  if (dir) assertWritableDirCap(dir, 'destination.result.append_to_lafs_dir');
}

export function clientFor(config: Config, extra: { beforeRequest?: () => Promise<void> } = {}): TahoeClient {
  return new TahoeClient({
    url: config.destination.url,
    retry: { attempts: config.http.retry.attempts, delays: config.http.retry.delay },
    idleTimeout: config.http.timeout,
    uploadTimeouts: config.operation.timeouts.updates,
    caFiles: config.http.ca_certs_files,
    connections: config.operation.concurrency + 2,
    debugRequests: config.http.debug_requests,
    beforeRequest: extra.beforeRequest,
  });
}

interface QueueMark {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

function queueConsumed(cache: EntryCache, path: string, st: Stats): boolean {
  const raw = cache.getMeta('queue_consumed');
  if (!raw) return false;
  const m = JSON.parse(raw) as QueueMark;
  return m.path === path && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ino === st.ino;
}

/** Phase 1, with its progress line. */
function scanTree(p: BackupPlan): Promise<ScanReport> {
  const live = { objects: 0, bytes: 0 };
  p.progress?.phase({ label: 'scanning', unit: 'entries', bytes: true, read: () => live });
  return buildQueue({
    source: p.source,
    queuePath: p.queuePath,
    filter: p.config.filter,
    readMeta: p.readMeta,
    shouldStop: () => p.stop.signal !== undefined,
    onProgress: (entries, bytes) => {
      live.objects = entries;
      live.bytes = bytes;
    },
  });
}

/** Phase 1 only (`--queue-only`): no cache, no gateway. */
export async function queueOnly(p: BackupPlan): Promise<BackupOutcome> {
  const started = Date.now();
  const scan = await scanTree(p);
  if (p.stop.signal) throw new InterruptedError(p.stop.signal);
  return { scan, stats: emptyRunStats(), incomplete: scan.skipped.unreadable + scan.skipped.vanished > 0, elapsedMs: Date.now() - started };
}

export async function runBackup(p: BackupPlan, cache: EntryCache): Promise<BackupOutcome> {
  const started = Date.now();
  const { config } = p;
  const op = config.operation;
  const plan = await planQueue({
    queuePath: p.queuePath,
    source: p.source,
    reuse: op.reuse_queue,
    force: p.forceQueue,
    checkMtime: config.source.queue.check_mtime,
    consumed: (st) => queueConsumed(cache, p.queuePath, st),
  });
  log.info({ reason: plan.why }, plan.rebuild ? 'building the queue file' : 'reusing the queue file');
  let scan: ScanReport | undefined;
  if (plan.rebuild) {
    scan = await scanTree(p);
  }
  if (p.stop.signal) throw new InterruptedError(p.stop.signal);

  const generation = cache.startGeneration(op.try_resume, p.source);
  const objects = parseRate(op.rate_limit.objects, 'operation.rate_limit.objects');
  const client = clientFor(config, { beforeRequest: objects ? () => objects.take(1) : undefined });
  p.stop.onRequest(() => client.abortAll());
  const xz = config.destination.encoding.xz;
  const settings = xzSettings(xz.options);
  const ctx: UploadContext = {
    root: Buffer.from(p.source),
    client,
    cache: op.disable_deduplication ? undefined : cache,
    limiter: new Limiter(op.concurrency),
    xz: { policy: { enabled: xz.enabled, minSize: xz.min_size, rules: compileSizeRules(xz.path_filter) }, settings, id: encodingId(settings) },
    bytes: parseRate(op.rate_limit.bytes, 'operation.rate_limit.bytes'),
    stats: emptyRunStats(),
    trustNs: 2_000_000_000n,
    readXattrs: p.readXattrs,
    stopping: () => p.stop.signal !== undefined,
  };
  // Totals for progress: from this run's phase 1, or the trailer of a reused queue file.
  const totals = p.progress ? (scan ?? readQueueTotals(p.queuePath)) : undefined;
  p.progress?.phase({ label: 'uploading', unit: 'entries', bytes: true, totals: totals && { objects: totals.entries, bytes: totals.bytes }, read: () => ({ objects: entriesDone(ctx.stats), bytes: ctx.stats.bytesDone }) });
  try {
    const root = await uploadQueue(ctx, p.queuePath);
    cache.addBackup({ name: basename(p.source), source: p.source, cap: root.cap });
    const qs = statSync(p.queuePath);
    cache.setMeta('queue_consumed', JSON.stringify({ path: p.queuePath, size: qs.size, mtimeMs: qs.mtimeMs, ino: qs.ino } satisfies QueueMark));
    cache.commit();
    const skipped = ctx.stats.skipped;
    const incomplete = (scan ? scan.skipped.unreadable + scan.skipped.vanished : 0) + skipped.unreadable + skipped.vanished + skipped.changedType > 0;
    return { cap: root.cap, generation, scan, stats: ctx.stats, incomplete, elapsedMs: Date.now() - started };
  } catch (e) {
    cache.commit();
    if (p.stop.signal && (e instanceof StoppedError || (e instanceof TahoeError && e.tahoeCode === 'aborted'))) {
      throw new InterruptedError(p.stop.signal);
    }
    throw e;
  } finally {
    await client.close();
  }
}
