/**
 * Retry budgets: how often a failed call is tried again and how long to wait before each try.
 * Two budgets (README, "Retries and time limits"): a short one for commands someone waits
 * for, and the start probe of a backup, and a long one for outages that begin in the middle
 * of a backup. A gateway's Retry-After is honoured within the budget.
 */

export interface RetryPolicy {
  /** How many times a failed call is tried again (0: never). */
  attempts: number;
  /** Seconds to wait before each retry; the last one repeats. */
  delays: number[];
}

/** `http.retry`: a nightly backup rides out an outage of ~20 minutes. */
export const BACKUP_RETRY: RetryPolicy = { attempts: 4, delays: [10, 60, 600] };
/** `http.interactive_retry`: a person waiting learns within seconds that the gateway is down. */
export const INTERACTIVE_RETRY: RetryPolicy = { attempts: 2, delays: [1, 3] };

/** The longest wait the budget allows (of the delays its attempts use): a gateway's Retry-After is capped by it. */
export function longestDelay(policy: RetryPolicy): number {
  const delays = policy.delays.length ? policy.delays : [0];
  return Math.max(0, ...delays.slice(0, Math.max(1, policy.attempts)));
}

/**
 * Seconds to wait before retry number `n + 1` (n counts from 0), and why: the budget's own
 * delay, or what the gateway asked for (Retry-After) capped by the budget's longest delay.
 */
export function retryDelay(policy: RetryPolicy, n: number, retryAfter?: number): { seconds: number; note: string } {
  const delays = policy.delays.length ? policy.delays : [0];
  const own = delays[Math.min(n, delays.length - 1)]!;
  if (retryAfter === undefined) return { seconds: own, note: '' };
  const cap = longestDelay(policy);
  if (retryAfter <= cap) return { seconds: retryAfter, note: ` (the gateway asked for ${retryAfter} s)` };
  return { seconds: cap, note: ` (the gateway asked for ${retryAfter} s; the retry budget waits at most ${cap} s)` };
}

/**
 * A Retry-After header in seconds: a number of seconds, or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; a date in the past is 0.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (!Number.isFinite(at) || !/[a-z]/i.test(v)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
