/** Deciding whether phase 1 runs, or an existing queue file is uploaded as it is. */
import { statSync, type Stats } from 'node:fs';
import { QueueFileError, readQueueHeader } from './queue-file.js';

export type QueuePlan = { rebuild: true; why: string } | { rebuild: false; why: string };

export interface PlanInput {
  queuePath: string;
  source: string;
  reuse: boolean;
  force: boolean;
  checkMtime: boolean;
  /** True when a finished backup already consumed this queue file (as it is now). */
  consumed: (queueStat: Stats) => boolean;
}

/**
 * Whether phase 1 must run. `--reuse-queue` takes the file as it is; `-f` always rebuilds;
 * otherwise (with `check_mtime`) an existing queue newer than the source's mtime is reused —
 * but only when it was built for this source and no finished backup consumed it yet, so a
 * nightly run never re-uploads yesterday's list when the tree changed deep inside.
 */
export async function planQueue(p: PlanInput): Promise<QueuePlan> {
  let qs: Stats | undefined;
  try {
    qs = statSync(p.queuePath);
  } catch {
    qs = undefined;
  }
  if (p.reuse) {
    if (!qs) throw new QueueFileError(`--reuse-queue: queue file ${p.queuePath} does not exist`);
    const header = await readQueueHeader(p.queuePath);
    if (header && header.source.toString() !== p.source) {
      throw new QueueFileError(`queue file ${p.queuePath} was built for ${JSON.stringify(header.source.toString())}, not ${JSON.stringify(p.source)}; rebuild it with -f`);
    }
    return { rebuild: false, why: 'reuse requested' };
  }
  if (p.force) return { rebuild: true, why: 'rebuild forced' };
  if (!qs) return { rebuild: true, why: 'no queue file yet' };
  if (!p.checkMtime) return { rebuild: true, why: 'check_mtime is off' };
  const srcMtime = statSync(p.source).mtimeMs;
  if (qs.mtimeMs <= srcMtime) return { rebuild: true, why: 'queue older than the source' };
  const header = await readQueueHeader(p.queuePath).catch(() => undefined);
  if (!header || header.source.toString() !== p.source) return { rebuild: true, why: 'queue built for another source' };
  if (p.consumed(qs)) return { rebuild: true, why: 'queue already used by a finished backup' };
  return { rebuild: false, why: 'unfinished queue newer than the source' };
}
