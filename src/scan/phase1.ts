/** Phase 1: walk the source tree, apply the filters, and write the queue file. */
import { createHash } from 'node:crypto';
import { log, logs } from '../log.js';
import { ConfigError } from '../errors.js';
import { compileRules, firstMatch } from './filters.js';
import { encodePath } from './queue-codec.js';
import { OwnFiles, type OwnFile } from './own-files.js';
import { writeQueue } from './queue-file.js';
import { DirDigest, walk, type SkipReason, type WalkOptions } from './walk.js';

export interface ScanReport {
  entries: number;
  /** Total size of the regular files queued. */
  bytes: number;
  /** Entries left out, by reason. `unreadable` and `vanished` make the backup incomplete. */
  skipped: Record<SkipReason, number>;
  elapsedMs: number;
  /** When the walk began (ms since the epoch): entries changed since may differ from their lines. */
  startedAt: number;
}

export interface ScanOptions {
  source: string;
  queuePath: string;
  filter: string[];
  readMeta?: WalkOptions['readMeta'];
  /** The tool's own state files (queue, cache, result file, log): left out where they are inside the source. */
  own?: readonly OwnFile[];
  /** Progress: entries queued so far, and the size of the files among them. */
  onProgress?: (entries: number, bytes: number) => void;
  /** Checked between batches: true stops the walk (the old queue file stays as it was). */
  shouldStop?: () => boolean;
}

class WalkStopped extends Error {}

/**
 * A digest of everything that decides which entries a walk lists, besides the tree itself:
 * the filter rules, the tool's own files left out, and whether ACLs and capabilities were
 * read. A queue with another selection is never reused without --reuse-queue.
 */
export function selectionId(filter: readonly string[], own: OwnFiles, readsMeta: boolean): string {
  const what = JSON.stringify({ queue: 1, filter, own: own.described, meta: readsMeta });
  return `sha256:${createHash('sha256').update(what).digest('hex')}`;
}

/** How a relative path is shown to people: escaped as in the queue file, quoted. */
export function showPath(rel: Buffer): string {
  return JSON.stringify(rel.length ? encodePath(rel) : '.');
}

export async function buildQueue(opts: ScanOptions): Promise<ScanReport> {
  const started = Date.now();
  const rules = compileRules(opts.filter);
  const own = new OwnFiles(opts.source, opts.own ?? []);
  const ownMet: string[] = [];
  const dirs = new DirDigest();
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
    const onOwn = (rel: Buffer) => ownMet.push(encodePath(rel));
    for await (const batch of walk({ root: Buffer.from(opts.source), rules, readMeta: opts.readMeta, onSkip, sizes, dirs, own, onOwn })) {
      if (opts.shouldStop?.()) throw new WalkStopped();
      entries += batch.length;
      if (logs('noise')) for (const e of batch) log.noise({ path: encodePath(e.path) }, 'queued');
      opts.onProgress?.(entries, sizes.bytes);
      yield batch;
    }
  }
  try {
    const header = { source: Buffer.from(opts.source), created: new Date(started), selection: selectionId(opts.filter, own, Boolean(opts.readMeta)) };
    const trailer = () => ({
      entries,
      bytes: sizes.bytes,
      left: { unreadable: skipped.unreadable, vanished: skipped.vanished },
      dirs: { count: dirs.count, newestCtimeNs: dirs.newestCtimeNs, ctimes: dirs.digest() },
    });
    await writeQueue(opts.queuePath, header, counted(), trailer);
  } catch (e) {
    if (e instanceof WalkStopped) return { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started, startedAt: started };
    throw e;
  }
  const report = { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started, startedAt: started };
  if (ownMet.length) {
    const shown = ownMet.slice(0, 10).map((p) => JSON.stringify(p)).join(', ') + (ownMet.length > 10 ? `, and ${ownMet.length - 10} more` : '');
    log.info({ files: ownMet.length }, `left lafs-backup's own files out of the backup: ${shown}`);
  }
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
