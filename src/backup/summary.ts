/**
 * What a backup did, as one JSON object (`backup --json`, on stdout) or one line (stderr, at
 * the default level): both made from the tally of phase 2's events (backup/tally.ts) and the
 * run's facts, by pure functions. The JSON shape is documented in the README and kept stable:
 * fields may be added, never renamed or removed.
 */
import { formatBytes } from '../progress.js';
import type { ScanReport } from '../scan/phase1.js';
import type { Tally } from './tally.js';

/** What the summary is made of besides the tally: the run's facts and the time taken. */
export interface SummaryInput {
  cap?: string;
  generation?: number;
  scan?: ScanReport;
  incomplete: boolean;
  elapsedMs: number;
  /** `--dry-run`: what would have been done; nothing was sent or written. */
  dryRun?: boolean;
}

export interface BackupSummary {
  outcome: 'success' | 'incomplete';
  /** `--dry-run`: the counts say what would be uploaded and reused; no cap, no generation. */
  dry_run: boolean;
  name: string;
  source: string;
  /** Null for --queue-only. */
  generation: number | null;
  /** The root cap; null for --queue-only. A secret. */
  cap: string | null;
  queue: { path: string; rebuilt: boolean; entries: number | null };
  /** uploaded: sent to the gateway; reused: known by path and metadata; deduplicated: known by contents (no upload). */
  files: { uploaded: number; reused: number; deduplicated: number; not_cached: number };
  /** How the uploaded files were stored: xz, or raw because of their name (or a rule), size, or contents; raw: xz disabled. */
  stored: { xz: number; raw_by_name: number; raw_by_size: number; raw_by_content: number; raw: number };
  symlinks: { uploaded: number; reused: number };
  directories: { created: number; reused: number };
  /** uploaded: plaintext of the files uploaded (before compression). */
  bytes: { read: number; sent: number; uploaded: number; xz_in: number; xz_out: number; xz_saved: number; deduplicated: number };
  skipped: { unreadable: number; vanished: number; changed_type: number; special: number; excluded: number };
  elapsed_seconds: number;
}

export function backupSummary(s: Tally, o: SummaryInput, ctx: { name: string; source: string; queuePath: string }): BackupSummary {
  const scan = o.scan?.skipped;
  return {
    outcome: o.incomplete ? 'incomplete' : 'success',
    dry_run: o.dryRun ?? false,
    name: ctx.name,
    source: ctx.source,
    generation: o.generation ?? null,
    cap: o.cap ?? null,
    queue: { path: ctx.queuePath, rebuilt: o.scan !== undefined, entries: o.scan?.entries ?? null },
    files: { uploaded: s.filesUploaded, reused: s.filesReused, deduplicated: s.filesDeduplicated, not_cached: s.filesNotCached },
    stored: { xz: s.stored.xz, raw_by_name: s.stored['raw-by-name'], raw_by_size: s.stored['raw-by-size'], raw_by_content: s.stored['raw-by-content'], raw: s.stored.raw },
    symlinks: { uploaded: s.symlinksUploaded, reused: s.symlinksReused },
    directories: { created: s.dirsCreated, reused: s.dirsReused },
    bytes: { read: s.bytesRead, sent: s.bytesSent, uploaded: s.bytesUploaded, xz_in: s.xzIn, xz_out: s.xzOut, xz_saved: Math.max(0, s.xzIn - s.xzOut), deduplicated: s.bytesDeduplicated },
    skipped: {
      unreadable: (scan?.unreadable ?? 0) + s.skipped.unreadable,
      vanished: (scan?.vanished ?? 0) + s.skipped.vanished,
      changed_type: s.skipped['changed-type'],
      special: scan?.special ?? 0,
      excluded: scan?.excluded ?? 0,
    },
    elapsed_seconds: Math.round(o.elapsedMs) / 1000,
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The one-line form. */
export function summaryLine(j: BackupSummary): string {
  const { skipped: k } = j;
  const reasons = [`${k.unreadable} unreadable`, `${k.vanished} vanished`, `${k.changed_type} changed type`, plural(k.special, 'special file')].filter((r) => !r.startsWith('0 '));
  const skippedN = k.unreadable + k.vanished + k.changed_type + k.special;
  const secs = `${j.elapsed_seconds.toFixed(1)} s`;
  const excluded = k.excluded ? `, ${k.excluded} excluded by filters` : '';
  const skipped = skippedN ? `; ${plural(skippedN, 'entry', 'entries')} skipped (${reasons.join(', ')})` : '';
  if (j.dry_run) return dryRunLine(j, secs, skipped, excluded);
  if (j.cap === null) {
    return `queue ${JSON.stringify(j.queue.path)} written in ${secs}: ${plural(j.queue.entries ?? 0, 'entry', 'entries')}${excluded}${skipped}`;
  }
  const xz = j.bytes.xz_in ? ` (xz saved ${formatBytes(j.bytes.xz_saved)}, ${Math.round((100 * j.bytes.xz_saved) / j.bytes.xz_in)}%)` : '';
  const st = j.stored;
  const raw = ([[st.raw_by_name, 'by name'], [st.raw_by_size, 'by size'], [st.raw_by_content, 'by contents']] as const).filter(([n]) => n).map(([n, why]) => `${n} ${why}`);
  const storedAs = j.files.uploaded && (st.xz || raw.length) ? ` (${st.xz} xz${raw.length ? `, raw ${raw.join(', ')}` : ''})` : '';
  const dedup = j.files.deduplicated ? ` / ${j.files.deduplicated} found by contents` : '';
  const links = j.symlinks.uploaded + j.symlinks.reused ? `; symlinks ${j.symlinks.uploaded} uploaded / ${j.symlinks.reused} reused` : '';
  return (
    `backup ${JSON.stringify(j.name)} generation ${j.generation} ${j.outcome === 'success' ? 'done' : 'INCOMPLETE'} in ${secs}: ` +
    `files ${j.files.uploaded} uploaded${storedAs} / ${j.files.reused} reused${dedup}${links}; directories ${j.directories.created} created / ${j.directories.reused} reused; ` +
    `${formatBytes(j.bytes.read)} read, ${formatBytes(j.bytes.sent)} sent${xz}${skipped}${excluded}`
  );
}

/** The one-line form of a dry run: what would be uploaded and created, and what would be reused. */
function dryRunLine(j: BackupSummary, secs: string, skipped: string, excluded: string): string {
  const dedup = j.files.deduplicated ? ` / ${j.files.deduplicated} found by contents` : '';
  const links = j.symlinks.uploaded + j.symlinks.reused ? `; symlinks ${j.symlinks.uploaded} to upload / ${j.symlinks.reused} reused` : '';
  return (
    `dry run of backup ${JSON.stringify(j.name)} in ${secs}, nothing sent or written: ` +
    `files ${j.files.uploaded} to upload (${formatBytes(j.bytes.uploaded)}, ${formatBytes(j.bytes.sent)} to send) / ${j.files.reused} reused${dedup}${links}; ` +
    `directories ${j.directories.created} to create / ${j.directories.reused} reused${skipped}${excluded}`
  );
}
