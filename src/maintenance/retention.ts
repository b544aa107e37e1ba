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
 *
 * `within` (restic's --keep-within, internal/restic/snapshot_policy.go) keeps every backup whose
 * time is after "the newest backup's time minus DURATION", the duration taken off as calendar
 * years, months and days (as Go's AddDate: 31 March less a month is 3 March) and then hours.
 * The reference is restic's — the latest backup time that is not in the future (a clock that
 * ran ahead does not move the window) — and never later than the time of the highest
 * generation, so the newest backup is always inside the window whatever the clock did.
 */

export interface KeepPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep every backup within this long of the newest one (restic's --keep-within). */
  within?: Within;
}

/** A calendar duration, as restic writes it: `1y2m3d4h` (m is months). */
export interface Within {
  years: number;
  months: number;
  days: number;
  hours: number;
  /** As the user wrote it, for messages and keep reasons. */
  text: string;
}

const UNITS = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;

/**
 * Parses restic's duration: one or more NUMBER UNIT pairs, units y (years), m (months), d (days),
 * h (hours), each at most once; the whole must be more than zero. Returns the reason when it is
 * not one (restic accepts negative numbers and repeated units; a policy that means less than
 * nothing is refused here instead).
 */
export function parseWithin(text: string): Within | string {
  const t = text.trim();
  const d: Within = { years: 0, months: 0, days: 0, hours: 0, text: t };
  const seen = new Set<string>();
  const re = /(\d+)([a-zA-Z]?)/y;
  let at = 0;
  if (!t) return 'it is empty';
  while (at < t.length) {
    re.lastIndex = at;
    const m = re.exec(t);
    if (!m) return `expected a number at ${JSON.stringify(t.slice(at))}`;
    const unit = m[2]!;
    if (!unit) return `no unit after ${m[1]} (y years, m months, d days, h hours)`;
    const key = UNITS[unit as keyof typeof UNITS];
    if (!key) return `unknown unit ${JSON.stringify(unit)} after ${m[1]} (y years, m months, d days, h hours)`;
    if (seen.has(unit)) return `the unit ${unit} is given twice`;
    seen.add(unit);
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n) || n > 1_000_000) return `${m[1]}${unit} is too long`;
    d[key] = n;
    at = re.lastIndex;
  }
  if (d.years + d.months + d.days + d.hours === 0) return 'it is zero (nothing would be within it)';
  return d;
}

/** The start of the window: `ref` less the duration (calendar years, months, days, then hours), in seconds. */
export function windowStart(ref: number, w: Within, utc = false): number {
  const d = new Date(ref * 1000);
  const moved = utc
    ? Date.UTC(d.getUTCFullYear() - w.years, d.getUTCMonth() - w.months, d.getUTCDate() - w.days, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds())
    : new Date(d.getFullYear() - w.years, d.getMonth() - w.months, d.getDate() - w.days, d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()).getTime();
  return (moved - w.hours * 3600_000) / 1000 + (ref * 1000 - Math.floor(ref * 1000)) / 1000;
}

/**
 * The time the window of a series ends at: the latest backup time not in the future (restic's
 * findLatestTimestamp), but no later than the time of the highest generation.
 */
function windowEnd<T extends Dated>(newest: T[], now: number): number | undefined {
  let latest: number | undefined;
  for (const b of newest) if (b.ts < now && (latest === undefined || b.ts > latest)) latest = b.ts;
  // Every backup in the future: restic's reference is then the zero time, and all are kept.
  return latest === undefined ? undefined : Math.min(latest, newest[0]!.ts);
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

export function selectKept<T extends Dated>(backups: T[], policy: KeepPolicy, opts: { utc?: boolean; now?: number } = {}): Selection<T> {
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
    if (policy.within) {
      const end = windowEnd(newest, opts.now ?? Date.now() / 1000);
      const start = end === undefined ? -Infinity : windowStart(end, policy.within, opts.utc);
      // A window reaching before the earliest time a Date holds (300000y) starts before every backup, not at NaN.
      const from = Number.isNaN(start) ? -Infinity : start;
      for (const b of newest) if (b.ts > from) note(b, `within ${policy.within.text}`);
    }
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
