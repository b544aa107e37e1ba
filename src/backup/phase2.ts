/**
 * Phase 2, put together: the queue reader, the file stage and the directory stage, built from
 * the configuration and given what they need from outside — an uploader and a directory maker
 * (the client, or the dry run's stand-in), a view of the cache (or none), where their events
 * go, and the run's one stop. Returns the root's Child.
 */
import { availableParallelism } from 'node:os';
import { listingSalt } from '../cache/keys.js';
import type { Config } from '../config/load.js';
import type { Child } from '../core/child.js';
import { encodingId, xzSettings } from '../core/xz.js';
import { compileNameRules, compileSizeRules } from '../scan/filters.js';
import { DirStage } from './dir-stage.js';
import type { EventSink } from './events.js';
import type { ReadXattrs } from './file-plan.js';
import { FileStage } from './file-stage.js';
import { ListingPlanner } from './listing-plan.js';
import type { DirMaker, StageCache, Uploader } from './ports.js';
import { parseRate } from '../core/ratelimit.js';
import { answerByPlan, type Written } from './plan-answer.js';
import { readQueueFile } from './reader.js';
import { SourceStats, type EntryStat } from './source-stat.js';
import type { XzChoice } from './upload.js';

/**
 * A file or listing changed less than this long before it was read is not trusted: a second
 * change in the same clock tick would not show in its mtime or ctime.
 */
export const TRUST_NS = 2_000_000_000n;

/** How this run stores compressible files, from `destination.encoding.xz`. */
export function xzChoice(config: Config): XzChoice {
  const xz = config.destination.encoding.xz;
  const settings = xzSettings(xz.options);
  return {
    policy: {
      enabled: xz.enabled,
      minSize: xz.min_size,
      rules: compileSizeRules(xz.path_filter),
      compressedNames: compileNameRules(xz.compressed_names, 'destination.encoding.xz.compressed_names'),
      minSaving: xz.min_saving,
    },
    settings,
    id: encodingId(settings),
  };
}

export interface Phase2 {
  config: Config;
  /** The directory backed up, absolute. */
  source: string;
  queuePath: string;
  client: Uploader & DirMaker;
  /** Undefined with deduplication disabled: nothing is looked up or remembered. */
  cache?: StageCache;
  /** User xattrs, and ACLs and capabilities, when extended metadata is backed up. */
  readXattrs?: ReadXattrs;
  readMeta?: (abs: Buffer, st: EntryStat) => { caps?: string; acls?: string };
  /** Entries changed at or after this (ns) have their ACLs and capabilities read again. */
  metaSince: bigint;
  emit: EventSink;
  stop: { signal: AbortSignal; fail: (e: unknown) => void };
  /** No byte rate limit (the dry run sends nothing). */
  unmetered?: boolean;
  /** The listing keys this run's walk made, and the queue it wrote (only that queue's): listingPlanner. */
  plan?: { listings: ListingPlanner; written?: Written };
}

/**
 * What a run's listing keys depend on besides the tree: the encoding, the compression policy,
 * whether user xattrs are on the edges. Listings of an earlier edge format (before `size`)
 * are not reused: their dircaps lack it.
 */
export function listingSaltOf(config: Config, xattrs: boolean): Buffer {
  const xz = xzChoice(config);
  return listingSalt({ xz: xz.id, policy: xz.policy, xattrs, edges: 2 });
}

/**
 * Phase 1's side of the listings (listing-plan.ts): give its `queued` to the walk, and the
 * planner to runPhase2 as `plan` when phase 2 reads the queue that walk wrote. `walkStart`:
 * no later than the walk's start (ms): its children changed before that, less TRUST_NS, only.
 */
export function listingPlanner(config: Config, walkStart: number): ListingPlanner {
  return new ListingPlanner(listingSaltOf(config, config.source.extended_metadata), BigInt(walkStart) * 1_000_000n - TRUST_NS);
}

export async function runPhase2(p: Phase2): Promise<Child> {
  const op = p.config.operation;
  const root = Buffer.from(p.source);
  const xz = xzChoice(p.config);
  const { signal, fail } = p.stop;
  const files = new FileStage({
    root,
    client: p.client,
    cache: p.cache,
    xz,
    concurrency: op.concurrency,
    encoders: p.config.destination.encoding.xz.encoders ?? availableParallelism(),
    prehash: op.hash_before_upload,
    bytes: p.unmetered ? undefined : parseRate(op.rate_limit.bytes, 'operation.rate_limit.bytes'),
    trustNs: TRUST_NS,
    readXattrs: p.readXattrs,
    emit: p.emit,
    signal,
    fail,
  });
  const dirs = new DirStage({ root, client: p.client, cache: p.cache, concurrency: op.concurrency, readXattrs: p.readXattrs, emit: p.emit, signal, fail });
  const source = new SourceStats(root);
  try {
    const { plan, cache } = p;
    if (plan?.written && cache) {
      const whole = await answerByPlan({ queuePath: p.queuePath, plan: plan.listings, written: plan.written, cache, dirs, source, root, readMeta: p.readMeta, metaSince: p.metaSince, signal });
      if (whole) return whole;
    }
    return await readQueueFile({
      queuePath: p.queuePath,
      root,
      source,
      files,
      dirs,
      listingSalt: p.cache ? listingSaltOf(p.config, Boolean(p.readXattrs)) : undefined,
      trustedBefore: BigInt(Date.now()) * 1_000_000n - TRUST_NS,
      plan: p.cache ? p.plan?.listings : undefined,
      readMeta: p.readMeta,
      metaSince: p.metaSince,
      emit: p.emit,
      signal,
      fail,
    });
  } finally {
    source.close();
  }
}
