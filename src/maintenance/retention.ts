/**
 * Retention policies for `cleanup`: which backups to keep, the others being forgotten.
 *
 * Per backup name (one source's series), newest first: `last` keeps the N newest; `hourly`,
 * `daily`, `weekly` (ISO weeks), `monthly`, `yearly` keep the newest backup of each of the N
 * most recent periods that have one. A backup kept by any rule is kept. Periods are in local
 * time (set TZ to choose), or UTC when asked.
 *
 * Newest means the highest generation, never the latest time: a clock set back must not make
 * the newest backup look old. Times only say which period a backup falls in.
 */

export interface KeepPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface Dated {
  id: number;
  name: string;
  /** What orders backups: the generation (a later run always has a higher one). */
  generation: number;
  /** Seconds since the epoch. */
  ts: number;
}

export type Period = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';
export const PERIODS: Period[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

const pad = (n: number) => String(n).padStart(2, '0');

function parts(d: Date, utc: boolean) {
  return utc
    ? { y: d.getUTCFullYear(), m: d.getUTCMonth(), day: d.getUTCDate(), h: d.getUTCHours(), wd: d.getUTCDay() }
    : { y: d.getFullYear(), m: d.getMonth(), day: d.getDate(), h: d.getHours(), wd: d.getDay() };
}

/** ISO 8601 week: the week with the year's first Thursday is week 1. */
function isoWeek(y: number, m: number, day: number, wd: number): string {
  const date = Date.UTC(y, m, day);
  const thursday = new Date(date + (3 - ((wd + 6) % 7)) * 86400_000);
  const yearStart = Date.UTC(thursday.getUTCFullYear(), 0, 1);
  const week = Math.floor((thursday.getTime() - yearStart) / (7 * 86400_000)) + 1;
  return `${thursday.getUTCFullYear()}-W${pad(week)}`;
}

export function periodKey(ts: number, period: Period, utc = false): string {
  const p = parts(new Date(ts * 1000), utc);
  switch (period) {
    case 'hourly':
      return `${p.y}-${pad(p.m + 1)}-${pad(p.day)}T${pad(p.h)}`;
    case 'daily':
      return `${p.y}-${pad(p.m + 1)}-${pad(p.day)}`;
    case 'weekly':
      return isoWeek(p.y, p.m, p.day, p.wd);
    case 'monthly':
      return `${p.y}-${pad(p.m + 1)}`;
    case 'yearly':
      return `${p.y}`;
  }
}

export interface Selection<T> {
  keep: T[];
  forget: T[];
  /** Why each kept backup is kept ('last', 'daily 2026-11-21', …). */
  reasons: Map<number, string[]>;
}

export function hasPolicy(p: KeepPolicy): boolean {
  return Object.values(p).some((v) => v !== undefined);
}

export function selectKept<T extends Dated>(backups: T[], policy: KeepPolicy, opts: { utc?: boolean } = {}): Selection<T> {
  const reasons = new Map<number, string[]>();
  const note = (b: T, why: string) => reasons.set(b.id, [...(reasons.get(b.id) ?? []), why]);
  const byName = new Map<string, T[]>();
  for (const b of backups) {
    const series = byName.get(b.name);
    if (series) series.push(b);
    else byName.set(b.name, [b]);
  }
  for (const series of byName.values()) {
    const newest = [...series].sort((a, b) => b.generation - a.generation || b.id - a.id);
    newest.slice(0, policy.last ?? 0).forEach((b) => note(b, 'last'));
    for (const period of PERIODS) {
      const n = policy[period] ?? 0;
      const seen = new Set<string>();
      for (const b of newest) {
        if (seen.size >= n) break;
        const key = periodKey(b.ts, period, opts.utc);
        if (seen.has(key)) continue;
        seen.add(key);
        note(b, `${period} ${key}`);
      }
    }
  }
  return { keep: backups.filter((b) => reasons.has(b.id)), forget: backups.filter((b) => !reasons.has(b.id)), reasons };
}
