/** Waits longer than a Node timer holds (2³¹-1 ms) wait, instead of firing after 1 ms. */
import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/core/ratelimit.js';
import { longTimeout, sleep, TIMER_MAX_MS } from '../../src/core/timers.js';

const settledWithin = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true, () => true), new Promise<boolean>((ok) => setTimeout(() => ok(false), ms))]);

describe('long timers', () => {
  it('a delay past 2³¹ ms is still pending after 200 ms (Node alone fires it after 1 ms), and can be cancelled', async () => {
    let fired = false;
    const t = longTimeout(() => (fired = true), TIMER_MAX_MS + 10_000);
    const stop = new AbortController();
    const waiting = sleep(3_000_000_000, stop.signal);
    expect(await settledWithin(waiting, 200)).toBe(false);
    expect(fired).toBe(false);
    t.clear();
    stop.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
  });

  it('short delays fire as usual', async () => {
    const started = performance.now();
    await sleep(20);
    // Node may fire a timer up to a millisecond before performance.now() says it is due; the
    // point is that it is not the 1 ms an overflowed delay becomes.
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    await new Promise<void>((ok) => longTimeout(ok, 0));
  });

  it("a rate limit's debt longer than 2³¹ ms is waited, not skipped", async () => {
    // One byte per 10^6 s (the slowest rate allowed), 64 KiB taken at once: a debt of ~2 years.
    const bucket = new TokenBucket(1e-6, 1);
    expect(await settledWithin(bucket.take(65_536), 200)).toBe(false);
  });
});
