/** Phase 1: walk the source tree, apply the filters, and write the queue file. */
import { createHash } from 'node:crypto';
import { log, logs } from '../log.js';
import { ConfigError } from '../errors.js';
import { Selector, type LeftOut, type SelectionConfig } from './select.js';
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
  /** The queue file as written (its size and SHA-256); none when the walk was stopped. */
  written?: { bytes: number; sha256: Buffer };
}

export interface ScanOptions {
  source: string;
  queuePath: string;
  filter: string[];
  /** The excludes beside `filter` (select.ts); none when absent. */
  excludes?: Omit<SelectionConfig, 'filter'>;
  readMeta?: WalkOptions['readMeta'];
  /** The tool's own state files (queue, cache, result file, log): left out where they are inside the source. */
  own?: readonly OwnFile[];
  /** Progress: entries queued so far, and the size of the files among them. */
  onProgress?: (entries: number, bytes: number) => void;
  /** Checked between batches: true stops the walk (the old queue file stays as it was). */
  shouldStop?: () => boolean;
  /** Each entry queued, with its stat, in queue order (walk.ts). */
  onQueued?: WalkOptions['onQueued'];
  /** The attribute memo (attr-memo.ts), with readMeta. */
  attrMemo?: WalkOptions['attrMemo'];
}

class WalkStopped extends Error {}

export const NO_EXCLUDES: Omit<SelectionConfig, 'filter'> = { exclude: [], exclude_if_present: [], exclude_caches: false, one_file_system: false };

/**
 * A digest of everything that decides which entries a walk lists, besides the tree itself:
 * the filter rules, the excludes (patterns, with those read from files; marker names; caches;
 * one file system), the tool's own files left out, and whether ACLs and capabilities were
 * read. A queue with another selection is never reused without --reuse-queue. Without
 * excludes the digest is what it was before they existed, so such queues stay reusable.
 */
export function selectionId(select: SelectionConfig, own: OwnFiles, readsMeta: boolean): string {
  const { filter, ...excludes } = select;
  const any = excludes.exclude.length > 0 || excludes.exclude_if_present.length > 0 || excludes.exclude_caches || excludes.one_file_system;
  const what = JSON.stringify({ queue: 1, filter, ...(any ? { excludes } : {}), own: own.described, meta: readsMeta });
  return `sha256:${createHash('sha256').update(what).digest('hex')}`;
}

/** How the first entry left out was decided, for the line that says nothing is left. */
function decidedBy(by: LeftOut | undefined): string {
  return by ? `${by.key}[${by.index}] ${JSON.stringify(by.text)}` : 'the filters';
}

/** How a relative path is shown to people: escaped as in the queue file, quoted. */
export function showPath(rel: Buffer): string {
  return JSON.stringify(rel.length ? encodePath(rel) : '.');
}

export async function buildQueue(opts: ScanOptions): Promise<ScanReport> {
  const started = Date.now();
  const selection: SelectionConfig = { filter: opts.filter, ...(opts.excludes ?? NO_EXCLUDES) };
  const select = new Selector(selection);
  const own = new OwnFiles(opts.source, opts.own ?? []);
  const ownMet: string[] = [];
  const dirs = new DirDigest();
  const skipped: Record<SkipReason, number> = { excluded: 0, special: 0, unreadable: 0, vanished: 0 };
  let firstExcluded: Buffer | undefined;
  let firstBy: LeftOut | undefined;
  let rootEmptied: string | undefined;
  const onSkip = (rel: Buffer, reason: SkipReason, detail?: string, by?: LeftOut) => {
    skipped[reason]++;
    if (reason === 'excluded' && !firstExcluded) {
      firstExcluded = rel;
      firstBy = by;
    }
    if (reason === 'unreadable') log.warn({ path: encodePath(rel) }, `cannot read ${showPath(rel)}: ${detail ?? 'error'}; skipped`);
    else if (reason === 'vanished') log.warn({ path: encodePath(rel) }, `${showPath(rel)} vanished while the tree was read; skipped`);
    else if (reason === 'special') log.info({ path: encodePath(rel) }, `skipping special file ${showPath(rel)} (socket, FIFO or device)`);
    else if (logs('noise')) log.noise({ path: encodePath(rel) }, `excluded by ${by ? `${by.key}[${by.index}]` : 'filter'}`);
  };
  const onEmptied = (rel: Buffer, why: string) => {
    if (!rel.length) rootEmptied = why;
    log.info({ path: encodePath(rel) }, `${showPath(rel)}: its contents are left out (${why === 'another file system' ? 'another file system is mounted there: one_file_system' : `it holds ${why}`})`);
  };
  let entries = 0;
  let written: ScanReport['written'];
  const sizes = { bytes: 0 };
  async function* counted() {
    const onOwn = (rel: Buffer) => ownMet.push(encodePath(rel));
    for await (const batch of walk({ root: Buffer.from(opts.source), select, readMeta: opts.readMeta, onSkip, onEmptied, sizes, dirs, own, onOwn, onQueued: opts.onQueued, attrMemo: opts.attrMemo })) {
      if (opts.shouldStop?.()) throw new WalkStopped();
      entries += batch.length;
      if (logs('noise')) for (const e of batch) log.noise({ path: encodePath(e.path) }, 'queued');
      opts.onProgress?.(entries, sizes.bytes);
      yield batch;
    }
  }
  try {
    const header = { source: Buffer.from(opts.source), created: new Date(started), selection: selectionId(selection, own, Boolean(opts.readMeta)) };
    const trailer = () => ({
      entries,
      bytes: sizes.bytes,
      left: { unreadable: skipped.unreadable, vanished: skipped.vanished },
      dirs: { count: dirs.count, newestCtimeNs: dirs.newestCtimeNs, ctimes: dirs.digest() },
    });
    const w = await writeQueue(opts.queuePath, header, counted(), trailer);
    written = { bytes: w.bytes, sha256: w.sha256 };
  } catch (e) {
    if (e instanceof WalkStopped) return { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started, startedAt: started };
    throw e;
  }
  const report = { entries, bytes: sizes.bytes, skipped, elapsedMs: Date.now() - started, startedAt: started, written };
  if (ownMet.length) {
    const shown = ownMet.slice(0, 10).map((p) => JSON.stringify(p)).join(', ') + (ownMet.length > 10 ? `, and ${ownMet.length - 10} more` : '');
    log.info({ files: ownMet.length }, `left lafs-backup's own files out of the backup: ${shown}`);
  }
  if (entries <= 1 && rootEmptied !== undefined) {
    // The source itself is marked: an empty backup would "succeed" every night while saving nothing.
    throw new ConfigError(`${rootEmptied === 'another file system' ? 'one_file_system' : rootEmptied === 'CACHEDIR.TAG' ? 'exclude_caches' : 'exclude_if_present'}: nothing in ${opts.source} is left to back up (it holds ${rootEmptied})`);
  }
  if (entries <= 1 && firstExcluded) {
    // Only the root is left: the filters or excludes left out everything in it. An empty
    // backup would "succeed" every night while saving nothing.
    const shown = `/${firstExcluded.toString('utf8')}`;
    throw new ConfigError(`${firstBy?.key ?? 'filter'}: nothing in ${opts.source} is left to back up (${skipped.excluded} entries excluded; ${decidedBy(firstBy)} excluded ${JSON.stringify(shown)})`);
  }
  log.debug({ ...report.skipped, entries, ms: report.elapsedMs }, 'queue built');
  return report;
}
