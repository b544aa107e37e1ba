/**
 * The queue file a run's phase 2 reads: phase 1 writes it (with its progress line), or a queue
 * file already there is reused — checked line by line, and proved fresh when reused unasked —
 * and what a finished backup records of it (its stamp, the entries its walk left out). The
 * tool's own state files are left out of every walk.
 */
import { statSync, type Stats } from 'node:fs';
import type { EntryCache } from '../cache/db.js';
import type { Config } from '../config/load.js';
import type { Stop } from '../core/stop.js';
import { AppError, describeErrno } from '../errors.js';
import { log } from '../log.js';
import type { Progress } from '../progress.js';
import { AttrMemo } from '../scan/attr-memo.js';
import { OwnFiles, type OwnFile } from '../scan/own-files.js';
import { buildQueue, selectionId, type ScanOptions, type ScanReport } from '../scan/phase1.js';
import { CLOCK_SLACK_NS, planQueue } from '../scan/plan.js';
import { readQueueTrailer } from '../scan/queue-file.js';
import { excludesOf, selectionOf } from '../scan/select.js';
import { checkQueue } from './queue-reuse.js';

/** What the queue's making needs of the run: its request, its stop, its reader of ACLs and capabilities. */
export interface QueueRun {
  req: { config: Config; forceQueue: boolean; progress?: Progress };
  stop: Pick<Stop, 'signal' | 'check'>;
  meta: { readAclsAndCaps: NonNullable<ScanOptions['readMeta']> };
  /** The walk's listing keys, for phase 2 (backup/listing-plan.ts). */
  listings: { queued: NonNullable<ScanOptions['onQueued']> };
}

export function queueStat(queuePath: string): Stats {
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
export function ownFiles(config: Config, queuePath: string): OwnFile[] {
  const own: OwnFile[] = [{ path: queuePath, prefixes: ['.tmp-'] }];
  const db = config.source.entry_cache.path;
  if (db) own.push({ path: db, suffixes: ['-wal', '-shm', '-journal', '.lock', '.lock-owner'] });
  const result = config.destination.result.append_to_file;
  if (result) own.push({ path: result, suffixes: ['.lock'], prefixes: ['.tmp-'] });
  if (config.logging.file) own.push({ path: config.logging.file });
  return own;
}

/**
 * Phase 1, with its progress line; `writeTo`: where the queue goes, when not to `queuePath` (a
 * dry run's); `attrMemo`: the attribute memo (scan/attr-memo.ts), when extended metadata is kept.
 */
export async function scanTree(run: QueueRun, source: string, queuePath: string, writeTo = queuePath, attrMemo?: AttrMemo): Promise<ScanReport> {
  const { req, stop } = run;
  const live = { objects: 0, bytes: 0 };
  req.progress?.phase({ label: 'scanning', unit: 'entries', bytes: true, read: () => live });
  const own = ownFiles(req.config, queuePath);
  if (writeTo !== queuePath) own.push({ path: writeTo, prefixes: ['.tmp-'] });
  const scan = await buildQueue({
    source,
    queuePath: writeTo,
    filter: req.config.filter,
    excludes: excludesOf(req.config),
    own,
    readMeta: req.config.source.extended_metadata ? run.meta.readAclsAndCaps : undefined,
    attrMemo,
    shouldStop: () => stop.signal.aborted,
    // The walk's listing keys, for phase 2 (none are used without deduplication).
    onQueued: req.config.operation.disable_deduplication ? undefined : run.listings.queued,
    onProgress: (entries, bytes) => {
      live.objects = entries;
      live.bytes = bytes;
    },
  });
  stop.check();
  return scan;
}

export function scanIncomplete(scan: ScanReport | undefined): number {
  return scan ? scan.skipped.unreadable + scan.skipped.vanished : 0;
}

/** The queue phase 2 reads: built now, or reused; `created`: when the walk that built it began. */
export interface QueueReady {
  scan?: ScanReport;
  created?: Date;
}

/**
 * Phase 1, unless the queue file can be reused: a queue this run did not write may have been
 * edited, so every line is checked (paths beneath the source, metadata well formed, the
 * shape) before anything is uploaded; one reused unasked is also proved fresh (every
 * directory as its walk saw it), or rebuilt.
 */
export async function prepareQueue(run: QueueRun, source: string, queuePath: string, cache: EntryCache): Promise<QueueReady> {
  const { req, stop } = run;
  const { config } = req;
  const selection = selectionId(selectionOf(config), new OwnFiles(source, ownFiles(config, queuePath)), config.source.extended_metadata);
  const plan = await planQueue({
    queuePath,
    source,
    reuse: config.operation.reuse_queue,
    force: req.forceQueue,
    checkMtime: config.source.queue.check_mtime,
    selection,
    consumed: (st) => cache.queueConsumed(stamp(queuePath, st)),
  });
  let why = plan.why;
  let created: Date | undefined;
  if (!plan.rebuild) {
    const stale = await checkQueue(queuePath, source, plan.verify, () => stop.check());
    if (stale) why = stale;
    else created = plan.header?.created;
  }
  const rebuild = plan.rebuild || why !== plan.why;
  log.info({ reason: why }, rebuild ? 'building the queue file' : 'reusing the queue file');
  if (!rebuild) return { created };
  // The attribute memo of the last walk of this source with this selection, and tonight's kept
  // for the next (only a walk that wrote its queue whole: one stopped saw only part of the tree).
  const scope = { source, selection };
  const memo = config.source.extended_metadata ? new AttrMemo(AttrMemo.decode(cache.attrMemo(), scope), BigInt(Date.now()) * 1_000_000n - CLOCK_SLACK_NS) : undefined;
  const scan = await scanTree(run, source, queuePath, queuePath, memo);
  if (memo && scan.written) cache.keepAttrMemo(memo.encode(scope));
  return { scan, created: new Date(scan.startedAt) };
}

/** Which queue file a finished backup consumed. */
export function stamp(queuePath: string, st: { size: number; mtimeMs: number; ino: number }): { path: string; size: number; mtimeMs: number; ino: number } {
  return { path: queuePath, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
}

/**
 * Entries changed since the walk that built the queue began (give or take the clock's
 * granularity) have their ACLs and capabilities read again; without a record of when it
 * began (a queue of an earlier version), every entry's are.
 */
export function metaSince(created: Date | undefined): bigint {
  return created ? BigInt(created.getTime()) * 1_000_000n - CLOCK_SLACK_NS : -(1n << 63n);
}

/** Entries the walk that built the queue left out (a reused queue's walk may have, too: only --reuse-queue takes such a queue). */
export function walkLeftOut(scan: ScanReport | undefined, queuePath: string): number {
  if (scan) return scanIncomplete(scan);
  const left = readQueueTrailer(queuePath)?.left;
  return (left?.unreadable ?? 0) + (left?.vanished ?? 0);
}
