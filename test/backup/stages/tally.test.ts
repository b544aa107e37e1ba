/**
 * The summary, `--json`, the progress line and the exit code's "incomplete" are folds over the
 * stages' events: tested here on lists of events, without a run.
 */
import { describe, expect, it } from 'vitest';
import type { BackupEvent } from '../../../src/backup/events.js';
import { backupSummary, summaryLine } from '../../../src/backup/summary.js';
import { incomplete, progressCounts, tally } from '../../../src/backup/tally.js';

const p = (s: string) => Buffer.from(s);

/** A night with a bit of everything. */
const NIGHT: BackupEvent[] = [
  { type: 'file-reused', path: p('a'), size: 100, why: 'unchanged' },
  { type: 'file-reused', path: p('b'), size: 50, why: 'rehashed' },
  { type: 'read', bytes: 50, upload: false },
  { type: 'file-reused', path: p('h2'), size: 7, why: 'linked' },
  { type: 'read', bytes: 1000, upload: false },
  { type: 'compressed', in: 1000, out: 200 },
  { type: 'sent', bytes: 200 },
  { type: 'file-uploaded', path: p('small.txt'), size: 1000, stored: 'xz', streamed: 0 },
  { type: 'read', bytes: 1 << 20, upload: true },
  { type: 'retry', bytes: 1 << 20 },
  { type: 'read', bytes: 1 << 20, upload: true },
  { type: 'read', bytes: 1 << 20, upload: true },
  { type: 'sent', bytes: 2 << 20 },
  { type: 'file-uploaded', path: p('big.bin'), size: 2 << 20, stored: 'raw-by-content', streamed: 2 << 20 },
  { type: 'read', bytes: 30, upload: false },
  { type: 'file-deduplicated', path: p('copy'), size: 30 },
  { type: 'file-not-cached', path: p('busy.log'), why: 'changed' },
  { type: 'file-uploaded', path: p('busy.log'), size: 10, stored: 'raw-by-size', streamed: 0 },
  { type: 'future-mtime', path: p('future') },
  { type: 'file-uploaded', path: p('future'), size: 5, stored: 'raw-by-size', streamed: 0 },
  { type: 'symlink-uploaded', path: p('l1') },
  { type: 'sent', bytes: 6 },
  { type: 'symlink-reused', path: p('l2') },
  { type: 'dir-listed', path: p('old'), files: 40, symlinks: 2, bytes: 4000 },
  { type: 'dir-reused', path: p('same') },
  { type: 'dir-created', path: p('') },
  { type: 'skipped', path: p('gone'), why: 'vanished' },
];

const NAMING = { name: 'docs', source: '/src', queuePath: '/q' };

describe('the folds over events', () => {
  it('the summary (and --json) is what the events say, in whatever order they came', () => {
    const j = backupSummary(tally(NIGHT), { cap: 'fake:root', generation: 3, incomplete: false, elapsedMs: 1234 }, NAMING);
    expect(j.files).toEqual({ uploaded: 4, reused: 43, deduplicated: 1, not_cached: 1 });
    expect(j.stored).toEqual({ xz: 1, raw_by_name: 0, raw_by_size: 2, raw_by_content: 1, raw: 0 });
    expect(j.symlinks).toEqual({ uploaded: 1, reused: 3 });
    expect(j.directories).toEqual({ created: 1, reused: 2 });
    // A retried upload's first reads are taken back: read once, counted once.
    expect(j.bytes).toEqual({ read: 50 + 1000 + (2 << 20) + 30, sent: 200 + (2 << 20) + 6, uploaded: 1000 + (2 << 20) + 15, xz_in: 1000, xz_out: 200, xz_saved: 800, deduplicated: 30 });
    expect(j.skipped).toEqual({ unreadable: 0, vanished: 1, changed_type: 0, special: 0, excluded: 0 });
    expect(j.dry_run).toBe(false);
    const shuffled = [...NIGHT].reverse();
    expect(backupSummary(tally(shuffled), { cap: 'fake:root', generation: 3, incomplete: false, elapsedMs: 1234 }, NAMING)).toEqual(j);
  });

  it('the walk\'s own counts join phase 2\'s', () => {
    const scan = { entries: 90, bytes: 0, skipped: { excluded: 4, special: 1, unreadable: 2, vanished: 1 }, elapsedMs: 0, startedAt: 0 };
    const j = backupSummary(tally(NIGHT), { cap: 'x', generation: 1, scan, incomplete: true, elapsedMs: 0 }, NAMING);
    expect(j.skipped).toEqual({ unreadable: 2, vanished: 2, changed_type: 0, special: 1, excluded: 4 });
    expect(j.queue).toEqual({ path: '/q', rebuilt: true, entries: 90 });
    expect(j.outcome).toBe('incomplete');
  });

  it('progress counts every entry once and every file\'s bytes once, streamed or not', () => {
    const t = tally(NIGHT);
    // files 4 + 3 reused + 1 deduplicated, 2 symlinks, the listed directory with its 42, 2 directories, 1 skipped
    expect(progressCounts(t).objects).toBe(4 + 3 + 1 + 2 + 43 + 2 + 1);
    expect(progressCounts(t).bytes).toBe(100 + 50 + 7 + 1000 + (2 << 20) + 30 + 10 + 5 + 4000);
    // While the big file streams, its bytes show as they go; a retry takes them back.
    const during = tally(NIGHT.slice(0, 10));
    expect(progressCounts(during).bytes).toBe(100 + 50 + 7 + 1000);
    expect(progressCounts(tally(NIGHT.slice(0, 12))).bytes).toBe(100 + 50 + 7 + 1000 + (2 << 20));
  });

  it('a backup is incomplete when an entry was left out, by the walk or phase 2, or its metadata was not read whole', () => {
    const clean = NIGHT.filter((e) => e.type !== 'skipped');
    expect(incomplete(tally(clean), 0)).toBe(false);
    expect(incomplete(tally(clean), 1)).toBe(true);
    expect(incomplete(tally(NIGHT), 0)).toBe(true);
    expect(incomplete(tally([...clean, { type: 'metadata-unreadable', path: p('/src/acl') }]), 0)).toBe(true);
    // Changed while read, a future mtime: uploaded, so not incomplete.
    expect(tally(clean).filesNotCached + tally(clean).futureMtimes).toBe(2);
  });

  it('the one-line forms: a backup, and a dry run that says what would be done', () => {
    const t = tally(NIGHT);
    const line = summaryLine(backupSummary(t, { cap: 'x', generation: 3, incomplete: true, elapsedMs: 1500 }, NAMING));
    expect(line).toBe(
      'backup "docs" generation 3 INCOMPLETE in 1.5 s: files 4 uploaded (1 xz, raw 2 by size, 1 by contents) / 43 reused / 1 found by contents; symlinks 1 uploaded / 3 reused; directories 1 created / 2 reused; 2.00 MiB read, 2.00 MiB sent (xz saved 800 B, 80%); 1 entry skipped (1 vanished)',
    );
    const dry = backupSummary(t, { incomplete: true, elapsedMs: 1500, dryRun: true }, NAMING);
    expect(dry).toMatchObject({ dry_run: true, cap: null, generation: null });
    expect(summaryLine(dry)).toBe(
      'dry run of backup "docs" in 1.5 s, nothing sent or written: files 4 to upload (2.00 MiB, 2.00 MiB to send) / 43 reused / 1 found by contents; symlinks 1 to upload / 3 reused; directories 1 to create / 2 reused; 1 entry skipped (1 vanished)',
    );
  });
});
