/**
 * Deciding whether phase 1 runs, or an existing queue file is uploaded instead.
 *
 * `--reuse-queue` takes the file as it is (its shape is still checked whole); `-f` always
 * rebuilds. Otherwise (with `source.queue.check_mtime`) a queue left by `--queue-only` or an
 * interrupted run is reused only when it is proven fresh: built for this source with the same
 * selection (filters, own files left out, extended metadata read — phase1.ts selectionId), by
 * a walk that could read everything, not consumed by a finished backup yet, and with every
 * directory it lists unchanged since — the last is a full pass over the file, made by the
 * caller (backup/queue-reuse.ts) when this says `verify`. An mtime can be set back; a ctime
 * cannot, so the proof rests on the directories' ctimes.
 */
import { statSync, type Stats } from 'node:fs';
import { QueueFileError, readQueueHeader, readQueueTrailer, type QueueHeader, type QueueTrailer } from './queue-file.js';

/** A directory changed this shortly before the walk began may have changed again unseen in the same tick of the file system's clock. */
export const CLOCK_SLACK_NS = 2_000_000_000n;

export type QueuePlan =
  | { rebuild: true; why: string }
  | {
      rebuild: false;
      why: string;
      header?: QueueHeader;
      /** Reused automatically: the caller proves it fresh against this record of its walk. */
      verify?: NonNullable<QueueTrailer['dirs']>;
    };

export interface PlanInput {
  queuePath: string;
  source: string;
  reuse: boolean;
  force: boolean;
  checkMtime: boolean;
  /** This run's selection (phase1.ts selectionId). */
  selection: string;
  /** True when a finished backup already consumed this queue file (as it is now). */
  consumed: (queueStat: Stats) => boolean;
}

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
    return { rebuild: false, why: 'reuse requested', header };
  }
  if (p.force) return { rebuild: true, why: 'rebuild forced' };
  if (!qs) return { rebuild: true, why: 'no queue file yet' };
  if (!p.checkMtime) return { rebuild: true, why: 'check_mtime is off' };
  const header = await readQueueHeader(p.queuePath).catch(() => undefined);
  if (!header || header.source.toString() !== p.source) return { rebuild: true, why: 'queue built for another source' };
  if (!header.created || !header.selection) return { rebuild: true, why: 'queue of an earlier version (it cannot be proved fresh)' };
  if (header.selection !== p.selection) return { rebuild: true, why: 'the filters, excludes or files left out changed since the queue was built' };
  if (p.consumed(qs)) return { rebuild: true, why: 'queue already used by a finished backup' };
  const trailer = readQueueTrailer(p.queuePath);
  if (!trailer?.dirs || !trailer.left) return { rebuild: true, why: 'queue without a record of its walk (interrupted, or of an earlier version)' };
  if (trailer.left.unreadable + trailer.left.vanished > 0) return { rebuild: true, why: 'the walk that built the queue could not read everything' };
  const began = BigInt(header.created.getTime()) * 1_000_000n;
  if (trailer.dirs.newestCtimeNs >= began - CLOCK_SLACK_NS) return { rebuild: true, why: 'a directory changed while the queue was built, or just before' };
  return { rebuild: false, why: 'unfinished queue, if no directory changed since it was built', header, verify: trailer.dirs };
}
