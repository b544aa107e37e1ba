/**
 * Phase 2 without reading a line, on the night nothing changed. When this run's walk wrote
 * the queue and planned a listing key for every directory in it (listing-plan.ts `whole`),
 * the file phase 2 would read holds exactly the bytes the walk wrote (the same SHA-256), and
 * the cache knows every one of those listings, then reading the queue (reader.ts) would answer
 * every directory by its plan and look at no file: this gives the same answer from the plan
 * alone — each directory stat'ed and counted and its listing row raised, the root's edge made
 * as the reader makes it (owner and mode as stat'ed now, ACLs and capabilities read again if
 * it changed since the walk). Anything else — one directory unknown, gone or no longer a
 * directory, a byte of the queue different — and it answers nothing: the reader does the
 * work, from the first line, as before.
 *
 * Why this is safe is why the reader's plan is (listing-plan.ts): the keys are made of the
 * facts this run's own walk took moments before, and are trusted only for directories whose
 * children all changed before the walk began.
 */
import type { Child } from '../core/child.js';
import { AppError } from '../errors.js';
import { sameBytes } from '../scan/queue-file.js';
import type { DirStage } from './dir-stage.js';
import type { ListingPlanner, PlannedDir } from './listing-plan.js';
import type { DirCache } from './ports.js';
import { asItIsNow, type ReaderOptions } from './reader.js';
import type { EntryStat, SourceStats } from './source-stat.js';

/** What the walk wrote: the queue file's size and SHA-256 (scan/phase1.ts ScanReport.written). */
export interface Written {
  bytes: number;
  sha256: Buffer;
}

export interface PlanAnswerOptions extends Pick<ReaderOptions, 'root' | 'readMeta' | 'metaSince' | 'signal'> {
  queuePath: string;
  plan: Pick<ListingPlanner, 'whole' | 'planned'>;
  written: Written;
  cache: Pick<DirCache, 'knownListing'>;
  dirs: Pick<DirStage, 'listed' | 'listedWithin'>;
  source: Pick<SourceStats, 'lstat'>;
}

/** The root's Child when the plan answers the whole tree; undefined when the reader must. */
export async function answerByPlan(o: PlanAnswerOptions): Promise<Child | undefined> {
  const rootLine = o.plan.whole();
  if (!rootLine) return undefined;
  if (!(await sameBytes(o.queuePath, o.written.sha256, o.written.bytes))) return undefined;
  o.signal.throwIfAborted();
  // Every listing known, before anything is counted or raised (from here on, no await).
  let root: PlannedDir | undefined;
  for (const d of o.plan.planned()) {
    if (!o.cache.knownListing(d.key)) return undefined;
    root = d;
  }
  if (!root || root.path.length) return undefined;
  // Every directory still there, as the reader would find it (it stats each directory again:
  // one gone or no longer a directory is left out there, and its parent made again).
  let rootStat: EntryStat | undefined;
  for (const d of o.plan.planned()) {
    let st: EntryStat | undefined;
    try {
      st = o.source.lstat(d.path);
    } catch {
      return undefined;
    }
    if (!st?.isDirectory()) return undefined;
    if (!d.path.length) rootStat = st; // the root (its path is empty)
  }
  const entry = { ...rootLine.entry };
  asItIsNow(entry, rootStat!, o);
  for (const d of o.plan.planned()) if (d.path.length) o.dirs.listedWithin(d.path, d.key, counts(d));
  const child = o.dirs.listed(entry, rootStat!, root.key, counts(root));
  // Known a moment ago, in this same synchronous stretch, under the run's lock.
  if (!child) throw new AppError('the entry cache lost the root listing while phase 2 read it');
  return child;
}

function counts(d: { files: number; symlinks: number; bytes: number }): { files: number; symlinks: number; bytes: number } {
  return { files: d.files, symlinks: d.symlinks, bytes: d.bytes };
}
