/** Retention policies over synthetic backup dates (UTC), table-driven; --keep-within end to end. */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseWithin, periodKey, selectKept, type KeepPolicy } from '../../src/maintenance/retention.js';
import { backup, cacheRows, configArgs, project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const at = (iso: string) => Date.parse(iso) / 1000;

/** A year of backups: every day at 02:00, plus extra runs on some days. */
function series(name = 'src') {
  const out: { id: number; name: string; generation: number; ts: number; label: string }[] = [];
  let id = 0;
  for (let d = 0; d < 400; d++) {
    const day = new Date(Date.UTC(2025, 10, 1) + d * 86400_000);
    const iso = day.toISOString().slice(0, 10);
    out.push({ id: ++id, name, generation: id, ts: at(`${iso}T02:00:00Z`), label: `${iso}T02` });
    if (d % 10 === 0) out.push({ id: ++id, name, generation: id, ts: at(`${iso}T14:30:00Z`), label: `${iso}T14` });
  }
  return out;
}

const cases: [string, KeepPolicy, string[]][] = [
  ['last 3', { last: 3 }, ['2026-12-05T02', '2026-12-04T02', '2026-12-03T02']],
  ['daily 2: the newest of each of the two most recent days', { daily: 2 }, ['2026-12-05T02', '2026-12-04T02']],
  ['daily 1 on a day with two runs keeps the later one', { daily: 1 }, ['2026-12-05T02']],
  ['weekly 3: ISO weeks, the newest of each', { weekly: 3 }, ['2026-12-05T02', '2026-11-29T02', '2026-11-22T02']],
  ['monthly 3', { monthly: 3 }, ['2026-12-05T02', '2026-11-30T02', '2026-10-31T02']],
  ['yearly 2 (31 Dec 2025 had two runs: the later counts)', { yearly: 2 }, ['2026-12-05T02', '2025-12-31T14']],
  ['hourly 2', { hourly: 2 }, ['2026-12-05T02', '2026-12-04T02']],
  ['union of rules', { last: 1, monthly: 2 }, ['2026-12-05T02', '2026-11-30T02']],
];

describe('retention', () => {
  it.each(cases)('%s', (_, policy, expected) => {
    const all = series();
    const sel = selectKept(all, policy, { utc: true });
    const kept = sel.keep.sort((a, b) => b.ts - a.ts).map((b) => b.label);
    expect(kept).toEqual(expected);
    expect(sel.keep.length + sel.forget.length).toBe(all.length);
  });

  it('the day with two runs: keep-daily keeps its later run, keep-hourly both', () => {
    const all = series().filter((b) => b.label.startsWith('2026-11-26'));
    expect(all.map((b) => b.label)).toEqual(['2026-11-26T02', '2026-11-26T14']);
    expect(selectKept(all, { daily: 5 }, { utc: true }).keep.map((b) => b.label)).toEqual(['2026-11-26T14']);
    expect(selectKept(all, { hourly: 5 }, { utc: true }).keep.map((b) => b.label)).toEqual(['2026-11-26T02', '2026-11-26T14']);
  });

  it('applies per source name', () => {
    const all = [...series('a').slice(-5), ...series('b').slice(-5).map((b) => ({ ...b, id: b.id + 1000, generation: b.generation + 1000 }))];
    const sel = selectKept(all, { last: 2 }, { utc: true });
    expect(sel.keep.map((b) => `${b.name} ${b.label}`).sort()).toEqual(['a 2026-12-04T02', 'a 2026-12-05T02', 'b 2026-12-04T02', 'b 2026-12-05T02']);
  });

  it('ISO weeks: a week belongs to the year of its Thursday', () => {
    expect(periodKey(at('2024-12-30T12:00:00Z'), 'weekly', true)).toBe('2025-W01');
    expect(periodKey(at('2021-01-03T12:00:00Z'), 'weekly', true)).toBe('2020-W53');
    expect(periodKey(at('2026-11-21T12:00:00Z'), 'weekly', true)).toBe('2026-W47');
  });
});

describe('keep-within (restic --keep-within)', () => {
  const b = (gen: number, iso: string) => ({ id: gen, name: 'src', generation: gen, ts: at(iso), label: iso });
  const kept = (all: ReturnType<typeof b>[], text: string, now = at('2027-01-01T00:00:00Z')) => {
    const within = parseWithin(text);
    if (typeof within === 'string') throw new Error(within);
    return selectKept(all, { within }, { utc: true, now }).keep.map((x) => x.label);
  };

  it('parses restic durations (m is months) and refuses what means nothing, naming why', () => {
    expect(parseWithin('1y2m3d4h')).toMatchObject({ years: 1, months: 2, days: 3, hours: 4 });
    expect(parseWithin('30d')).toMatchObject({ years: 0, months: 0, days: 30, hours: 0 });
    for (const [text, why] of [
      ['', /empty/],
      ['30', /no unit after 30/],
      ['30x', /unknown unit "x"/],
      ['1d2d', /given twice/],
      ['0d', /zero/],
      ['-3d', /expected a number/],
      ['d', /expected a number/],
    ] as const) {
      expect(parseWithin(text), text).toMatch(why);
    }
  });

  it('keeps what is after the newest backup time less the duration; the boundary itself is outside, as in restic', () => {
    const all = [b(1, '2026-11-01T12:00:00Z'), b(2, '2026-11-20T12:00:00Z'), b(3, '2026-11-21T11:00:00Z'), b(4, '2026-11-21T12:00:00Z'), b(5, '2026-11-22T12:00:00Z')];
    expect(kept(all, '1d')).toEqual(['2026-11-22T12:00:00Z']);
    expect(kept(all, '25h')).toEqual(['2026-11-21T12:00:00Z', '2026-11-22T12:00:00Z']);
    expect(kept(all, '2d')).toEqual(['2026-11-21T11:00:00Z', '2026-11-21T12:00:00Z', '2026-11-22T12:00:00Z']);
    expect(kept(all, '1m')).toEqual(all.map((x) => x.label));
  });

  it('months and years are calendar ones, as Go\'s AddDate (31 March less a month is 3 March)', () => {
    const all = [b(1, '2026-03-02T12:00:00Z'), b(2, '2026-03-03T13:00:00Z'), b(3, '2026-03-31T12:00:00Z')];
    expect(kept(all, '1m')).toEqual(['2026-03-03T13:00:00Z', '2026-03-31T12:00:00Z']);
    const leap = [b(1, '2023-02-28T12:00:00Z'), b(2, '2023-03-01T13:00:00Z'), b(3, '2024-02-29T12:00:00Z')];
    // 29 Feb 2024 less a year is "29 Feb 2023", that is 1 March 2023 at 12:00.
    expect(kept(leap, '1y')).toEqual(['2023-03-01T13:00:00Z', '2024-02-29T12:00:00Z']);
  });

  it('the window is counted from the newest backup, not from now: a series that stopped a year ago is not forgotten', () => {
    const all = [b(1, '2025-01-01T00:00:00Z'), b(2, '2025-01-05T00:00:00Z'), b(3, '2025-01-10T00:00:00Z')];
    expect(kept(all, '7d', at('2026-06-01T00:00:00Z'))).toEqual(['2025-01-05T00:00:00Z', '2025-01-10T00:00:00Z']);
  });

  it('a clock that ran ahead does not move the window; a clock set back never makes the newest generation fall out', () => {
    const now = at('2026-11-22T13:00:00Z');
    // Generation 3 was stamped a year ahead: restic ignores it as a reference (it is kept: it is after any window).
    const ahead = [b(1, '2026-11-10T12:00:00Z'), b(2, '2026-11-22T12:00:00Z'), b(3, '2027-11-22T12:00:00Z')];
    expect(kept(ahead, '3d', now)).toEqual(['2026-11-22T12:00:00Z', '2027-11-22T12:00:00Z']);
    // Generation 3 ran with the clock a month back: it is the newest, and the window ends at its time.
    const back = [b(1, '2026-10-01T12:00:00Z'), b(2, '2026-11-22T12:00:00Z'), b(3, '2026-10-22T12:00:00Z')];
    expect(kept(back, '3d', now)).toEqual(['2026-11-22T12:00:00Z', '2026-10-22T12:00:00Z']);
  });

  it('a window longer than the calendar reaches (300000y, 1000000m) keeps everything, in UTC and local time', () => {
    // 300000 years back is before the earliest time a Date holds: the start was NaN, nothing was
    // "after" it, and --keep-within 300000y with --keep-last 1 forgot all but the newest.
    const all = [b(1, '1990-01-01T00:00:00Z'), b(2, '2026-11-22T12:00:00Z')];
    for (const text of ['300000y', '1000000y', '1000000m', '1000000y1000000m1000000d1000000h']) {
      expect(kept(all, text), text).toEqual(all.map((x) => x.label));
      const within = parseWithin(text) as Exclude<ReturnType<typeof parseWithin>, string>;
      expect(selectKept(all, { within, last: 1 }, { now: at('2027-01-01T00:00:00Z') }).forget, text).toEqual([]);
    }
  });

  it('with the other rules: a backup kept by any rule is kept', () => {
    const all = [b(1, '2026-09-15T12:00:00Z'), b(2, '2026-10-15T12:00:00Z'), b(3, '2026-11-20T12:00:00Z'), b(4, '2026-11-21T12:00:00Z'), b(5, '2026-11-22T12:00:00Z')];
    const within = parseWithin('2d') as Exclude<ReturnType<typeof parseWithin>, string>;
    const sel = selectKept(all, { within, monthly: 3 }, { utc: true, now: at('2027-01-01T00:00:00Z') });
    expect(sel.keep.map((x) => x.generation)).toEqual([1, 2, 4, 5]);
    expect(sel.reasons.get(5)).toEqual(['within 2d', 'monthly 2026-11']);
    expect(sel.reasons.get(4)).toEqual(['within 2d']);
  });
});

describe('cleanup --keep-within, end to end', () => {
  const env = useGrid();

  it('forgets the backups older than the window before the newest, per name; a bad duration is one exit-2 line', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url);
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(p.source, 'a'), `version ${i}`);
      const old = new Date(Date.now() - 3600_000);
      utimesSync(join(p.source, 'a'), old, old);
      const r = await backup(p);
      expect(r.code, r.stderr).toBe(0);
    }
    // Known times: 40, 20, 2 and 1 days ago.
    const day = 86400;
    const now = Math.floor(Date.now() / 1000);
    for (const [gen, ago] of [[1, 40], [2, 20], [3, 2], [4, 1]] as const) setTs(p.cache, gen, now - ago * day);
    const dry = await runCli([...configArgs(p), 'cleanup', '--keep-within', '30d', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would forget backup "src", generation 1, /m);
    expect(dry.stdout.match(/would forget backup/g)).toHaveLength(1);
    // With another rule: --keep-last 1 adds nothing here, --keep-within 2d alone would forget 1 and 2.
    const r = await runCli([...configArgs(p), 'cleanup', '--keep-within', '2d', '--keep-last', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups ORDER BY generation')).toEqual([{ generation: 3 }, { generation: 4 }]);
    for (const bad of ['30', '1w', '0d']) {
      const e = await runCli([...configArgs(p), 'cleanup', '--keep-within', bad]);
      expect(e.code, bad).toBe(2);
      expect(e.stderr).toMatch(new RegExp(`^lafs-backup: --keep-within: "${bad}" is not a duration like 30d, 12h or 1y2m: .+\\n$`));
    }
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(2);
  });

  it('before any backup (no entry cache yet): one line saying so, exit 2, as with --dry-run', async () => {
    // Without --dry-run the lock was taken first, beside a cache in a directory not made yet:
    // "cannot lock the entry cache …: no such file or directory", exit 1.
    const dir = tempDir();
    const cache = join(dir, 'state', 'lafs-backup', 'cache.db');
    for (const dry of [['--dry-run'], []]) {
      const r = await runCli(['--gateway', 'http://127.0.0.1:9', 'cleanup', '--keep-within', '30d', ...dry], { env: { HOME: dir, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') } });
      expect(r.stderr, dry.join(' ')).toBe(`lafs-backup: source.entry_cache.path: ${cache} does not exist (nothing to clean up; has a backup run?)\n`);
      expect(r.code).toBe(2);
    }
  });
});

function setTs(cache: string, generation: number, ts: number): void {
  const db = new Database(cache);
  try {
    db.prepare('UPDATE backups SET ts = ? WHERE generation = ?').run(ts, generation);
  } finally {
    db.close();
  }
}
