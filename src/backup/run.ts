/**
 * A whole backup, from one place: preflight, the cache lock, before_backup, the source (a glob
 * is resolved after the hook, which may have made the snapshot it matches), phase 1 (unless the
 * queue can be reused), the generation, phase 2, the `backups` row, the result (result file,
 * lafs dir), after_backup, the lock released. It returns an outcome; the command prints it.
 *
 * One AbortController per run: SIGINT/SIGTERM, or the first fatal error of a stage (the gateway
 * beyond its retry budget, the cache), aborts it with its reason. The signal reaches the
 * stages' pools (queued jobs are dropped, submitting fails), the client (requests in flight,
 * retry waits) and the before hook; the run then ends with that reason.
 */
import { statSync, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { EntryCache } from '../cache/db.js';
import type { Config } from '../config/load.js';
import { Pool } from '../core/pool.js';
import { AppError, describeErrno, EXIT, HookError, InterruptedError } from '../errors.js';
import type { HookVars, Outcome } from '../hooks.js';
import { log, oneLine } from '../log.js';
import type { Progress } from '../progress.js';
import { compileNameRules, compileSizeRules } from '../scan/filters.js';
import type { OwnFile } from '../scan/own-files.js';
import type { ScanReport } from '../scan/phase1.js';
import { clientFor } from '../tahoe/factory.js';
import { emptyRunStats, entriesDone, type RunStats, type UploadContext } from './context.js';
import { encodingId, xzSettings } from '../core/xz.js';
import { legacyMembers, seriesName } from './name.js';
import { preflight } from './preflight.js';
import { parseRate } from './ratelimit.js';
import { SourceStats } from './source-stat.js';
import type { RunGrid } from './grid.js';
import { backupSummary, type BackupSummary } from './summary.js';

export interface BackupRequest {
  config: Config;
  /** -f: rebuild the queue file even if it could be reused. */
  forceQueue: boolean;
  /** Shown on a terminal (or with --progress). */
  progress?: Progress;
}

export interface BackupOutcome {
  summary: BackupSummary;
  /** The root cap (undefined with --queue-only). A secret: output, never a log line. */
  cap?: string;
  /** 0, 3 (incomplete), 1 (the result could not be delivered) or 6 (after_backup failed). */
  exitCode: number;
  /** One-line problems that came after the backup itself was recorded (delivery, after hook). */
  problems: string[];
}

/** What the stages report back to the driver. */
interface Phases {
  cap?: string;
  generation?: number;
  scan?: ScanReport;
  stats: RunStats;
  incomplete: boolean;
}

/** The run's one stop: signals and the first fatal error abort it. */
class RunStop {
  readonly controller = new AbortController();
  /** The after hook's own stop: only a signal that comes while it runs stops it. */
  hook = new AbortController();
  private readonly handlers: [NodeJS.Signals, () => void][];

  constructor() {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
      const h = () => {
        this.hook.abort();
        if (this.controller.signal.aborted) return;
        log.warn({ signal: sig }, `${sig}: stopping; what is done is kept in the cache, rerun to finish`);
        this.controller.abort(new InterruptedError(sig));
      };
      process.on(sig, h);
      return [sig, h];
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends the run with `e`, unless it is ending already (the first reason stands). */
  fail = (e: unknown): void => {
    if (!this.controller.signal.aborted) this.controller.abort(e);
  };

  /** Throws the reason the run stopped, if it did. */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }
}

/** What the after hook is told about how the backup ended. */
function outcomeOf(code: number | undefined, err: unknown): Outcome {
  if (err instanceof HookError) return 'aborted';
  if (err instanceof InterruptedError) return 'interrupted';
  if (err !== undefined) return 'failed';
  return code === EXIT.INCOMPLETE ? 'incomplete' : 'success';
}

export async function runBackup(req: BackupRequest): Promise<BackupOutcome> {
  const { config } = req;
  const started = Date.now();
  const { queuePath, source: configured, dbPath } = preflight(config);
  // One name for every night of this source (a glob's match changes nightly): backup/name.ts.
  const name = seriesName(config.source);
  if (config.source.extended_metadata) (await import('../meta/entry.js')).assertMetadataReadable();
  const stop = new RunStop();
  const { runHook } = await import('../hooks.js');
  const hookOpts = { timeoutS: config.hooks.timeout };
  const vars: HookVars = { source: configured, name };
  let release: (() => Promise<void>) | undefined;
  let cache: EntryCache | undefined;
  let hooked = false;
  let result: BackupOutcome | undefined;
  let failure: unknown;
  try {
    if (dbPath) {
      const { lockCache } = await import('../cache/lock.js');
      const { EntryCache } = await import('../cache/db.js');
      release = await lockCache(dbPath);
      cache = EntryCache.open(dbPath, { commitAfter: config.source.entry_cache.commit_after });
      vars.generation = cache.nextGeneration(config.operation.try_resume).generation;
    }
    hooked = true;
    await runHook('before_backup', config.hooks.before_backup, vars, { ...hookOpts, signal: stop.signal });
    stop.check();
    // A gateway that is down is one line within seconds, before phase 1 (the short budget).
    // Its welcome page also says which grid it is on: the cache's rows of that grid are used.
    let grid: RunGrid | undefined;
    if (cache) {
      const welcome = await (await import('../tahoe/probe.js')).probeGateway(config, stop.signal);
      grid = await (await import('./grid.js')).pickGrid(config, stop.signal, cache, welcome, vars.generation!);
    }
    const { pickSource } = await import('../scan/source.js');
    const source = pickSource(configured);
    vars.source = source;
    const phases = cache ? await bothPhases(req, stop, { name, source, configured, grid }, queuePath, cache) : await queueOnly(req, stop, source, queuePath);
    const { metaTrouble } = await import('../meta/entry.js');
    // Metadata that could not be read (a bad ACL blob, …) also makes the backup incomplete.
    if (metaTrouble.count > 0) phases.incomplete = true;
    vars.cap = phases.cap;
    const summary = backupSummary({ ...phases, elapsedMs: Date.now() - started }, { name, source, queuePath });
    result = { summary, cap: phases.cap, exitCode: phases.incomplete ? EXIT.INCOMPLETE : EXIT.OK, problems: [] };
    if (phases.cap && cache) (await import('../cache/trees.js')).recordRunSummary(cache, summary);
    if (phases.cap && cache) await deliverResult(config, stop, { name, source, cap: phases.cap }, cache.seriesCaps(name), result);
    return result;
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    req.progress?.end();
    try {
      cache?.close();
    } catch (e) {
      // The run's own failure (often this very cache) is the one reported.
      if (failure === undefined) throw e;
    } finally {
      try {
        // The signal handlers stay until the after hook is done: a signal then stops the hook.
        if (hooked) {
          stop.hook = new AbortController();
          await afterHook(runHook, config, vars, result, failure, { ...hookOpts, signal: stop.hook.signal });
        }
      } finally {
        stop.dispose();
        await release?.();
      }
    }
  }
}

/** The result file and the lafs dir. A failure here leaves the backup recorded: exit 1, said. */
async function deliverResult(config: Config, stop: RunStop, b: import('./result.js').Delivered, ours: ReadonlySet<string>, result: BackupOutcome): Promise<void> {
  const { deliver } = await import('./result.js');
  const client = clientFor(config, { signal: stop.signal });
  try {
    await deliver(config, client, b, ours);
  } catch (e) {
    if (!(e instanceof AppError) || e instanceof InterruptedError) throw e;
    result.problems.push(`the backup is recorded, but its result could not be delivered: ${oneLine(e.message)}`);
    result.exitCode = EXIT.FAILURE;
  } finally {
    await client.close();
  }
}

/**
 * Runs after_backup however the backup ended. Its failure is the command's outcome only when
 * the backup itself went well (exit 6, the cap still printed); otherwise a warning.
 */
async function afterHook(runHook: typeof import('../hooks.js').runHook, config: Config, vars: HookVars, result: BackupOutcome | undefined, failure: unknown, opts: { timeoutS: number; signal: AbortSignal }): Promise<void> {
  const code = result?.exitCode;
  const exitCode = failure === undefined ? code : failure instanceof AppError ? failure.exitCode : EXIT.FAILURE;
  const error = failure === undefined ? undefined : oneLine(failure instanceof Error ? failure.message : String(failure));
  try {
    await runHook('after_backup', config.hooks.after_backup, { ...vars, cap: failure === undefined ? vars.cap : undefined, outcome: outcomeOf(code, failure), exitCode, error }, opts);
  } catch (e) {
    if (!result || failure !== undefined) {
      log.warn(oneLine((e as Error).message));
      return;
    }
    result.problems.push(oneLine((e as Error).message));
    if (result.exitCode === EXIT.OK || result.exitCode === EXIT.INCOMPLETE) result.exitCode = EXIT.HOOK;
  }
}

function queueStat(queuePath: string): Stats {
  try {
    return statSync(queuePath);
  } catch (e) {
    throw new AppError(`cannot read queue file ${queuePath}: ${describeErrno(e)}`);
  }
}

/**
 * The tool's own state files, wherever they are (phase 1 leaves out those inside the source):
 * taken from the configuration alone, so that --queue-only and the backup after it agree.
 */
function ownFiles(config: Config, queuePath: string): OwnFile[] {
  const own: OwnFile[] = [{ path: queuePath, prefixes: ['.tmp-'] }];
  const db = config.source.entry_cache.path;
  if (db) own.push({ path: db, suffixes: ['-wal', '-shm', '-journal', '.lock', '.lock-owner'] });
  const result = config.destination.result.append_to_file;
  if (result) own.push({ path: result, suffixes: ['.lock'], prefixes: ['.tmp-'] });
  if (config.logging.file) own.push({ path: config.logging.file });
  return own;
}

/** Phase 1, with its progress line. */
async function scanTree(req: BackupRequest, stop: RunStop, source: string, queuePath: string): Promise<ScanReport> {
  const { buildQueue } = await import('../scan/phase1.js');
  const { readAclsAndCaps } = await import('../meta/entry.js');
  const live = { objects: 0, bytes: 0 };
  req.progress?.phase({ label: 'scanning', unit: 'entries', bytes: true, read: () => live });
  const scan = await buildQueue({
    source,
    queuePath,
    filter: req.config.filter,
    excludes: (await import('../scan/select.js')).excludesOf(req.config),
    own: ownFiles(req.config, queuePath),
    readMeta: req.config.source.extended_metadata ? readAclsAndCaps : undefined,
    shouldStop: () => stop.signal.aborted,
    onProgress: (entries, bytes) => {
      live.objects = entries;
      live.bytes = bytes;
    },
  });
  stop.check();
  return scan;
}

function scanIncomplete(scan: ScanReport | undefined): number {
  return scan ? scan.skipped.unreadable + scan.skipped.vanished : 0;
}

/** Phase 1 only (`--queue-only`): no cache, no gateway. */
async function queueOnly(req: BackupRequest, stop: RunStop, source: string, queuePath: string): Promise<Phases> {
  const scan = await scanTree(req, stop, source, queuePath);
  return { scan, stats: emptyRunStats(), incomplete: scanIncomplete(scan) > 0 };
}

/** The backup being made: its name, the directory picked tonight, source.path as configured, and its grid. */
interface Naming {
  name: string;
  source: string;
  configured: string;
  grid?: RunGrid;
}

async function bothPhases(req: BackupRequest, stop: RunStop, naming: Naming, queuePath: string, cache: EntryCache): Promise<Phases> {
  const { source } = naming;
  const { config } = req;
  const op = config.operation;
  const { planQueue, CLOCK_SLACK_NS } = await import('../scan/plan.js');
  const { selectionId } = await import('../scan/phase1.js');
  const { OwnFiles } = await import('../scan/own-files.js');
  const readsMeta = config.source.extended_metadata;
  const stamp = (st: { size: number; mtimeMs: number; ino: number }) => ({ path: queuePath, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
  const plan = await planQueue({
    queuePath,
    source,
    reuse: op.reuse_queue,
    force: req.forceQueue,
    checkMtime: config.source.queue.check_mtime,
    selection: selectionId((await import('../scan/select.js')).selectionOf(config), new OwnFiles(source, ownFiles(config, queuePath)), readsMeta),
    consumed: (st) => cache.queueConsumed(stamp(st)),
  });
  let why = plan.why;
  let created: Date | undefined;
  if (!plan.rebuild) {
    // A queue this run did not write may have been edited: every line is checked (paths
    // beneath the source, metadata well formed, the shape) before anything is uploaded; one
    // reused unasked is also proved fresh (every directory as its walk saw it), or rebuilt.
    const { checkQueue } = await import('./queue-reuse.js');
    const stale = await checkQueue(queuePath, source, plan.verify, () => stop.check());
    if (stale) why = stale;
    else created = plan.header?.created;
  }
  const rebuild = plan.rebuild || why !== plan.why;
  log.info({ reason: why }, rebuild ? 'building the queue file' : 'reusing the queue file');
  const scan = rebuild ? await scanTree(req, stop, source, queuePath) : undefined;
  if (scan) created = new Date(scan.startedAt);

  const generation = cache.startGeneration(op.try_resume, source);
  const objects = parseRate(op.rate_limit.objects, 'operation.rate_limit.objects');
  const client = clientFor(config, { budget: 'backup', beforeRequest: objects ? () => objects.take(1) : undefined, signal: stop.signal });
  const xz = config.destination.encoding.xz;
  const settings = xzSettings(xz.options);
  const { readUserXattrs, readAclsAndCaps } = await import('../meta/entry.js');
  const ctx: UploadContext = {
    root: Buffer.from(source),
    source: new SourceStats(Buffer.from(source)),
    client,
    cache: op.disable_deduplication ? undefined : cache,
    files: new Pool('files', op.concurrency, stop.signal),
    dirs: new Pool('directories', op.concurrency, stop.signal),
    xz: {
      policy: {
        enabled: xz.enabled,
        minSize: xz.min_size,
        rules: compileSizeRules(xz.path_filter),
        compressedNames: compileNameRules(xz.compressed_names, 'destination.encoding.xz.compressed_names'),
        minSaving: xz.min_saving,
      },
      settings,
      id: encodingId(settings),
    },
    // Each xz encoder at preset 6 holds ~94 MiB: no more of them than cores, however many uploads.
    encoders: new Pool('xz', xz.encoders ?? availableParallelism(), stop.signal),
    prehash: op.hash_before_upload,
    uploading: new Map(),
    unhashed: new Map(),
    bytes: parseRate(op.rate_limit.bytes, 'operation.rate_limit.bytes'),
    stats: emptyRunStats(),
    trustNs: 2_000_000_000n,
    readXattrs: readsMeta ? readUserXattrs : undefined,
    readMeta: readsMeta ? readAclsAndCaps : undefined,
    // Without a record of when its walk began (a queue of an earlier version), every entry's
    // ACLs and capabilities are read again.
    metaSince: created ? BigInt(created.getTime()) * 1_000_000n - CLOCK_SLACK_NS : -(1n << 63n),
    hardlinks: new Map(),
  };
  if (req.progress) {
    // Totals for progress: from this run's phase 1, or the trailer of a reused queue file.
    const { readQueueTrailer } = await import('../scan/queue-file.js');
    const totals = scan ?? readQueueTrailer(queuePath);
    req.progress.phase({ label: 'uploading', unit: 'entries', bytes: true, totals: totals && { objects: totals.entries, bytes: totals.bytes }, read: () => ({ objects: entriesDone(ctx.stats), bytes: ctx.stats.bytesDone }) });
  }
  const { uploadQueue } = await import('./tree.js');
  try {
    // The queue file as phase 2 reads it: what a finished backup marks as consumed.
    const consumed = stamp(queueStat(queuePath));
    const root = await uploadQueue(ctx, queuePath, stop.fail);
    // One request: on a night with no change, the only evidence that the grid has what the cache says.
    await (await import('./grid.js')).confirmRoot(client, root.cap, ctx.cache, naming.grid);
    const future = ctx.stats.futureMtimes;
    if (future) log.warn({ files: future }, `${future} file${future === 1 ? ' has a modification time' : 's have modification times'} in the future (clock trouble?); backed up and cached as they are`);
    // Rows recorded before names were configurable, named after the directory a glob matched,
    // join this series (backup/name.ts legacyMembers).
    const adopt = legacyMembers(cache.listBackups(), naming.name, naming.configured);
    cache.addBackup({ name: naming.name, source, cap: root.cap, adopt });
    cache.markQueueConsumed(consumed);
    cache.commit();
    const skipped = ctx.stats.skipped;
    // A reused queue's walk may have left entries out too (only --reuse-queue takes such a queue).
    const left = scan ? undefined : (await import('../scan/queue-file.js')).readQueueTrailer(queuePath)?.left;
    const fromWalk = scan ? scanIncomplete(scan) : (left?.unreadable ?? 0) + (left?.vanished ?? 0);
    const incomplete = fromWalk + skipped.unreadable + skipped.vanished + skipped.changedType > 0;
    return { cap: root.cap, generation, scan, stats: ctx.stats, incomplete };
  } finally {
    ctx.source.close();
    await client.close();
  }
}
