/**
 * Timers that mean what they say for any delay. Node's timers hold at most 2³¹-1 ms (24.8
 * days): a longer delay is replaced by 1 ms with only a process warning, so a limit of a month
 * would fire at once. Durations from the configuration are checked against a documented range
 * when it is loaded (src/config/schema.ts, at most 7 days); a delay computed at run time (a
 * rate limit's debt) can still be longer, and waits here in steps that each fit.
 */
import { performance } from 'node:perf_hooks';

/** The longest delay one Node timer holds. */
export const TIMER_MAX_MS = 2 ** 31 - 1;

export interface LongTimeout {
  clear(): void;
}

/** Calls `fn` once `ms` milliseconds have passed (on the monotonic clock), however long that is. */
export function longTimeout(fn: () => void, ms: number, opts: { unref?: boolean } = {}): LongTimeout {
  const end = performance.now() + Math.max(0, ms);
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = end - performance.now();
    timer = left > TIMER_MAX_MS ? setTimeout(arm, TIMER_MAX_MS) : setTimeout(fn, Math.max(0, left));
    if (opts.unref) timer.unref();
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}

/** Waits `ms` milliseconds, however long; rejects with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((ok, fail) => {
    if (signal?.aborted) return fail(signal.reason);
    const onAbort = () => {
      t.clear();
      fail(signal!.reason);
    };
    const t = longTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      ok();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
