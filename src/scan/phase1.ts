/** Phase 1: walk the source tree, apply the filters, and write the queue file. */
import { log, logs } from '../log.js';
import { ConfigError } from '../errors.js';
import { compileRules, firstMatch } from './filters.js';
import { encodePath } from './queue-codec.js';
import { writeQueue } from './queue-file.js';
import { walk, type SkipReason, type WalkOptions } from './walk.js';

export interface ScanReport {
  entries: number;
  /** Total size of the regular files queued. */
  bytes: number;
  /** Entries left out, by reason. `unreadable` and `vanished` make the backup incomplete. */
  skipped: Record<SkipReason, number>;
  elapsedMs: number;
}

export interface ScanOptions {
  source: string;
  queuePath: string;
  filter: string[];
  readMeta?: WalkOptions['readMeta'];
  /** Progress: entries queued so far, and the size of the files among them. */
  onProgress?: (entries: number, bytes: number) => void;
  /** Checked between batches: true stops the walk (the old queue file stays as it was). */
  shouldStop?: () => boolean;
}

class WalkStopped extends Error {}

/** How a relative path is shown to people: escaped as in the queue file, quoted. */
export function showPath(rel: Buffer): string {
  return JSON.stringify(rel.length ? encodePath(rel) : '.');
}

export async function buildQueue(opts: ScanOptions): Promise<ScanReport> {
  const started = Date.now();
  const rules = compileRules(opts.filter);
  const skipped: Record<SkipReason, number> = { excluded: 0, special: 0, unreadable: 0, vanished: 0 };
  let firstExcluded: Buffer | undefined;
  const onSkip = (rel: Buffer, reason: SkipReason, detail?: string) => {
    skipped[reason]++;
    if (reason === 'excluded') firstExcluded ??= rel;
    if (reason === 'unreadable') log.warn({ path: encodePath(rel) }, `cannot read ${showPath(rel)}: ${detail ?? 'error'}; skipped`);
    else if (reason === 'vanished') log.warn({ path: encodePath(rel) }, `${showPath(rel)} vanished while the tree was read; skipped`);
    else if (reason === 'special') log.info({ path: encodePath(rel) }, `skipping special file ${showPath(rel)} (socket, FIFO or device)`);
    else if (logs('noise')) log.noise({ path: encodePath(rel) }, 'excluded by filter');
  };
  let entries = 0;
  const sizes = { bytes: 0 };
  async function* counted() {
    for await (const batch of walk({ root: Buffer.from(opts.source), rules, readMeta: opts.readMeta, onSkip, sizes })) {
      if (opts.shouldStop?.()) throw new WalkStopped();
      entries += batch.length;
      if (logs('noise')) for (const e of batch) log.noise({ path: encodePath(e.path) }, 'queued');
      opts.onProgress?.(entries, sizes.bytes);
      yield batch;
    }
  }
  try {
    await writeQueue(opts.queuePath, { source: Buffer.from(opts.source) }, counted(), () => ({ entries, bytes: sizes.bytes }));
  } catch (e) {
    if (e instanceof WalkStopped) return { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started };
    throw e;
  }
  const report = { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started };
  if (entries <= 1 && firstExcluded) {
    // Only the root is left: the filters excluded everything in it. An empty backup would
    // "succeed" every night while saving nothing.
    const shown = `/${firstExcluded.toString('utf8')}`;
    const decider = [firstMatch(rules, shown), firstMatch(rules, `${shown}/`)].find((r) => r && !r.include);
    const i = decider ? rules.indexOf(decider) : -1;
    const which = i >= 0 ? `filter[${i}] ${JSON.stringify(opts.filter[i])}` : 'the filters';
    throw new ConfigError(`filter: nothing in ${opts.source} is left to back up (${skipped.excluded} entries excluded; ${which} excluded ${JSON.stringify(shown)})`);
  }
  log.debug({ ...report.skipped, entries, ms: report.elapsedMs }, 'queue built');
  return report;
}
