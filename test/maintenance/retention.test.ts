/** Retention policies over synthetic backup dates (UTC), table-driven. */
import { describe, expect, it } from 'vitest';
import { periodKey, selectKept, type KeepPolicy } from '../../src/maintenance/retention.js';

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
