/**
 * A whole backup, from one place: before_backup, the source (a glob is resolved after the hook,
 * which may have made the snapshot it matches), phase 1 (unless the queue can be reused), the
 * generation, phase 2, the `backups` row, the result (result file, lafs dir), after_backup. It
 * returns an outcome; the command prints it.
 *
 * What it works with is opened by its session (commands/session.ts, `RunResources` here): the
 * cache's lock and the cache, the one stop, the progress line, clients. Everything checkable
 * before the lock is checked by `planBackup` first. The stop — SIGINT/SIGTERM, or the first
 * fatal error of a stage (the gateway beyond its retry budget, the cache) — reaches the stages'
 * pools (queued jobs are dropped, submitting fails), the client (requests in flight, retry
 * waits) and the before hook; the run then ends with its reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EntryCache } from '../cache/db.js';
import { readBook } from '../cache/grid.js';
import { recordRunSummary } from '../cache/trees.js';
import type { Config } from '../config/load.js';
import type { Stop } from '../core/stop.js';
import { EXIT } from '../errors.js';
import { runHook, type HookVars } from '../hooks.js';
import { log } from '../log.js';
import { assertMetadataReadable, metadataReaders } from '../meta/read.js';
import type { Progress } from '../progress.js';
import type { ScanReport } from '../scan/phase1.js';
import { readQueueTrailer } from '../scan/queue-file.js';
import { pickSource } from '../scan/source.js';
import type { TahoeClient } from '../tahoe/client.js';
import type { ClientExtras } from '../tahoe/factory.js';
import { DryRunCache, DryRunGrid } from './dry-run.js';
import type { EventSink } from './events.js';
import { afterHook, deliverResult, type BackupOutcome } from './finish.js';
import { confirmRoot, pickGrid, type RunGrid } from './grid.js';
import { legacyMembers, seriesName } from '../config/series-name.js';
import type { ListingPlanner } from './listing-plan.js';
import { listingPlanner, runPhase2, type Phase2 } from './phase2.js';
import { probeGateway } from './probe.js';
import { preflight, type Preflight } from './preflight.js';
import { metaSince, prepareQueue, queueStat, scanIncomplete, scanTree, stamp, walkLeftOut } from './queue.js';
import { checkQueue } from './queue-reuse.js';
import { parseRate } from '../core/ratelimit.js';
import { backupSummary } from './summary.js';
import { incomplete as isIncomplete, progressCounts, Tally } from './tally.js';

export type { BackupOutcome } from './finish.js';

export interface BackupRequest {
  config: Config;
  /** -f: rebuild the queue file even if it could be reused. */
  forceQueue: boolean;
  /** --dry-run: phase 1 and every cache decision; nothing sent, nothing written, no hook. */
  dryRun?: boolean;
  /** Shown on a terminal (or with --progress). */
  progress?: Progress;
}

/** What the phases report back to the driver (the counts are the tally's). */
interface Phases {
  cap?: string;
  generation?: number;
  scan?: ScanReport;
  /** Entries the walk that built the queue left out (unreadable, vanished). */
  leftOut: number;
}

/**
 * What a run is given by the session that opened it (commands/session.ts): its one stop, the
 * entry cache (open, and locked, for a backup; read-only or absent for a dry run), the progress
 * line, and clients bound to the stop. The session closes them all; the run closes the cache
 * early, before the after hook (which may copy it).
 */
export interface RunResources {
  stop: Stop;
  cache?: EntryCache;
  progress?: Progress;
  closeCache(): void;
  openClient(extras?: ClientExtras): TahoeClient;
}

/** What a run carries through its phases: its resources, the tally of its events and where they go, its metadata readers. */
interface Run {
  req: BackupRequest;
  res: RunResources;
  stop: Stop;
  tally: Tally;
  emit: EventSink;
  meta: ReturnType<typeof metadataReaders>;
  /** Phase 1's listing keys for phase 2 (backup/listing-plan.ts). */
  listings: ListingPlanner;
}

/** What is decided before anything is opened: the paths (preflight), the series name. */
export interface BackupPlan extends Preflight {
  /** One name for every night of this source (a glob's match changes nightly): config/series-name.ts. */
  name: string;
}

/**
 * Everything that can be checked before the lock is taken: every key (preflight; the state
 * directories made unless a dry run), the name, and extended metadata that cannot be read.
 */
export function planBackup(config: Config, dryRun: boolean): BackupPlan {
  const pre = preflight(config, { dryRun });
  const name = seriesName(config.source);
  if (config.source.extended_metadata) assertMetadataReadable();
  return { ...pre, name };
}

/**
 * The after hook's own stop: only a signal that comes while it runs stops it (one that came
 * earlier stopped the run, whose outcome the hook is told).
 */
class HookStop {
  private controller?: AbortController;

  start(): AbortSignal {
    this.controller = new AbortController();
    return this.controller.signal;
  }

  interrupt(): void {
    this.controller?.abort();
  }
}

export async function runBackup(req: BackupRequest, plan: BackupPlan, res: RunResources): Promise<BackupOutcome> {
  const started = Date.now();
  const tally = new Tally();
  const emit: EventSink = (e) => tally.add(e);
  const run: Run = { req, res, stop: res.stop, tally, emit, meta: metadataReaders((path) => emit({ type: 'metadata-unreadable', path })), listings: listingPlanner(req.config, started) };
  const hookStop = new HookStop();
  res.stop.onInterrupt((sig, first) => {
    hookStop.interrupt();
    if (first) log.warn({ signal: sig }, `${sig}: stopping; what is done is kept in the cache, rerun to finish`);
  });
  if (req.dryRun) return dryRun(run, plan, started);
  const vars: HookVars = { source: plan.source, name: plan.name };
  let hooked = false;
  let result: BackupOutcome | undefined;
  let failure: unknown;
  try {
    const { cache } = res;
    if (cache) vars.generation = cache.nextGeneration(req.config.operation.try_resume).generation;
    hooked = true;
    result = await recordedRun(run, plan, vars, started);
    return result;
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    await afterRun(run, vars, hooked ? hookStop : undefined, result, failure);
  }
}

/** before_backup, the gateway asked which grid it is on, the source picked, the phases, the result recorded and delivered. */
async function recordedRun(run: Run, plan: BackupPlan, vars: HookVars, started: number): Promise<BackupOutcome> {
  const { stop, res } = run;
  const { config } = run.req;
  const { cache } = res;
  await runHook('before_backup', config.hooks.before_backup, vars, { timeoutS: config.hooks.timeout, signal: stop.signal });
  stop.check();
  // A gateway that is down is one line within seconds, before phase 1 (the short budget).
  // Its welcome page also says which grid it is on: the cache's rows of that grid are used.
  let grid: RunGrid | undefined;
  if (cache) {
    const welcome = await probeGateway(config, stop.signal);
    grid = await pickGrid(config, stop.signal, cache, welcome, vars.generation!);
  }
  const source = pickSource(plan.source);
  vars.source = source;
  const naming = { name: plan.name, source, configured: plan.source, grid };
  const phases = cache ? await bothPhases(run, naming, plan.queuePath, cache) : await queueOnly(run, source, plan.queuePath);
  vars.cap = phases.cap;
  const result = outcome(run, phases, { name: plan.name, source, queuePath: plan.queuePath }, started);
  if (phases.cap && cache) {
    recordRunSummary(cache, result.summary);
    // backup's long budget: the backup is made, and a gateway busy for a minute must not cost its record.
    await deliverResult(config, res.openClient({ budget: 'backup' }), { name: plan.name, source, cap: phases.cap }, cache.seriesCaps(plan.name), result);
  }
  return result;
}

/**
 * However the run ended: the progress line ended, the cache closed (the run's own failure is
 * the one reported, not a failure to close), then after_backup — under the lock, with the
 * signal handlers still on, so that a signal then stops the hook. `hookStop` undefined: the
 * run ended before before_backup (no after hook either).
 */
async function afterRun(run: Run, vars: HookVars, hookStop: HookStop | undefined, result: BackupOutcome | undefined, failure: unknown): Promise<void> {
  const { config, progress } = run.req;
  progress?.end();
  try {
    run.res.closeCache();
  } catch (e) {
    if (failure === undefined) throw e;
  } finally {
    if (hookStop) await afterHook(runHook, config, vars, result, failure, { timeoutS: config.hooks.timeout, signal: hookStop.start() });
  }
}

/**
 * The outcome from the phases' facts and the tally: incomplete when the walk or phase 2 left
 * entries out, or metadata could not be read whole.
 */
function outcome(run: Run, phases: Phases, naming: { name: string; source: string; queuePath: string }, started: number): BackupOutcome {
  const t = run.tally;
  const incomplete = isIncomplete(t, phases.leftOut);
  if (t.futureMtimes) log.warn({ files: t.futureMtimes }, `${t.futureMtimes} file${t.futureMtimes === 1 ? ' has a modification time' : 's have modification times'} in the future (clock trouble?); backed up and cached as they are`);
  const summary = backupSummary(t, { ...phases, incomplete, elapsedMs: Date.now() - started, dryRun: run.req.dryRun }, naming);
  return { summary, cap: phases.cap, exitCode: incomplete ? EXIT.INCOMPLETE : EXIT.OK, problems: [] };
}

/** Phase 1 only (`--queue-only`): no cache, no gateway. */
async function queueOnly(run: Run, source: string, queuePath: string): Promise<Phases> {
  const scan = await scanTree(run, source, queuePath);
  return { scan, leftOut: scanIncomplete(scan) };
}

/** The backup being made: its name, the directory picked tonight, source.path as configured, and its grid. */
interface Naming {
  name: string;
  source: string;
  configured: string;
  grid?: RunGrid;
}

/** Phase 2's progress line: totals from this run's phase 1, or the trailer of a reused queue file. */
function showProgress(run: Run, label: string, queuePath: string, scan: ScanReport | undefined): void {
  const progress = run.req.progress;
  if (!progress) return;
  const totals = scan ?? readQueueTrailer(queuePath);
  progress.phase({ label, unit: 'entries', bytes: true, totals: totals && { objects: totals.entries, bytes: totals.bytes }, read: () => progressCounts(run.tally) });
}

/** Phase 2's common wiring: the configuration, the metadata readers, the events, the stop. */
function phase2Of(run: Run, source: string, queuePath: string, since: bigint): Omit<Phase2, 'client' | 'cache'> {
  const { config } = run.req;
  const meta = config.source.extended_metadata ? run.meta : undefined;
  return { config, source, queuePath, readXattrs: meta?.readUserXattrs, readMeta: meta?.readAclsAndCaps, metaSince: since, emit: run.emit, stop: run.stop };
}

/** Phase 1 (or a reused queue), a new generation, phase 2, and the backup recorded. */
async function bothPhases(run: Run, naming: Naming, queuePath: string, cache: EntryCache): Promise<Phases> {
  const { source } = naming;
  const { config } = run.req;
  const op = config.operation;
  const { scan, created } = await prepareQueue(run, source, queuePath, cache);
  const generation = cache.startGeneration(op.try_resume, source);
  const objects = parseRate(op.rate_limit.objects, 'operation.rate_limit.objects');
  // Phase 2's own client: the long retry budget, the objects rate limit (closed with the session).
  const client = run.res.openClient({ budget: 'backup', beforeRequest: objects ? () => objects.take(1) : undefined });
  showProgress(run, 'uploading', queuePath, scan);
  // The queue file as phase 2 reads it: what a finished backup marks as consumed.
  const consumed = stamp(queuePath, queueStat(queuePath));
  const stages = op.disable_deduplication ? undefined : cache;
  const root = await runPhase2({ ...phase2Of(run, source, queuePath, metaSince(created)), client, cache: stages, plan: scan ? { listings: run.listings, written: scan.written } : undefined });
  // One request: on a night with no change, the only evidence that the grid has what the cache says.
  const confirmed = confirmRoot(client, root.cap, stages, naming.grid);
  confirmed.catch(() => {});
  // While the gateway answers: the generation bumps of the rows this run used, written. They
  // count only once the backup is recorded (below), and a root the grid lacks forgets them all.
  cache.flushUses();
  await confirmed;
  // Rows recorded before names were configurable, named after the directory a glob matched,
  // join this series (backup/name.ts legacyMembers).
  const adopt = legacyMembers(cache.listBackups(), naming.name, naming.configured);
  cache.addBackup({ name: naming.name, source, cap: root.cap, adopt });
  cache.markQueueConsumed(consumed);
  cache.commit();
  return { cap: root.cap, generation, scan, leftOut: walkLeftOut(scan, queuePath) };
}

/**
 * `--dry-run`: phase 1 into a private temporary file (or the queue given to --reuse-queue,
 * read as it is), then phase 2 with stand-ins for the gateway and for the cache's records
 * (backup/dry-run.ts). No lock, no hook, no request, no generation, no row, no result: what the
 * tally says is what a backup now would do.
 */
async function dryRun(run: Run, plan: BackupPlan, started: number): Promise<BackupOutcome> {
  const { req, stop } = run;
  const { config } = req;
  const { name, queuePath } = plan;
  // The cache as it is, read-only (or none). No gateway is asked which grid it is on: the rows
  // of the grid the last backup went to are used.
  const cache = run.res.cache;
  const last = cache && readBook(cache)?.grids[0];
  if (last) cache!.useGrid(last.tag);
  const tmp = config.operation.reuse_queue ? undefined : mkdtempSync(join(tmpdir(), 'lafs-backup-dry-run-'));
  try {
    const source = pickSource(plan.source);
    let queue = queuePath;
    let scan: ScanReport | undefined;
    let created: Date | undefined;
    if (tmp) {
      queue = join(tmp, 'queue.txt');
      scan = await scanTree(run, source, queuePath, queue);
      created = new Date(scan.startedAt);
    } else {
      await checkQueue(queuePath, source, undefined, () => stop.check());
    }
    showProgress(run, 'dry run', queue, scan);
    const stand = new DryRunCache(cache);
    await runPhase2({ ...phase2Of(run, source, queue, metaSince(created)), client: new DryRunGrid(), cache: config.operation.disable_deduplication ? undefined : stand, unmetered: true });
    return outcome(run, { scan, leftOut: walkLeftOut(scan, queue) }, { name, source, queuePath }, started);
  } finally {
    req.progress?.end();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}
