/** Rate-limit specs and token-bucket arithmetic (with a fake clock: nothing here is timed). */
import { describe, expect, it } from 'vitest';
import { parseRate, TokenBucket, type Clock } from '../../src/core/ratelimit.js';

function fakeClock(): Clock & { slept: number[]; t: number } {
  const c = {
    t: 0,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(Math.round(ms));
      c.t += ms;
    },
  };
  return c;
}

describe('rate limits', () => {
  it('parses INTERVAL[:BURST] with rates like 1/10 and 1/3e6', () => {
    expect(parseRate('1/10:50', 'k')).toMatchObject({ perSecond: 10, burst: 50 });
    expect(parseRate('1/3e6', 'k')).toMatchObject({ perSecond: 3e6, burst: 3e6 });
    expect(parseRate(0.5, 'k')).toMatchObject({ perSecond: 2, burst: 2 });
    expect(parseRate(null, 'k')).toBeUndefined();
    expect(() => parseRate('fast', 'operation.rate_limit.objects')).toThrow(/^operation\.rate_limit\.objects: "fast" is not a number or a rate like 1\/10$/);
    expect(() => parseRate('1/10:0', 'k')).toThrow(/burst must be from 1 to/);
    expect(() => parseRate('0', 'k')).toThrow(/more than 0/);
  });

  it('refuses values that mean nothing: a division by zero, two bursts, hex, infinities, absurd rates', () => {
    expect(() => parseRate('1/0', 'k')).toThrow(/^k: "1\/0" divides by zero$/);
    expect(() => parseRate('1/10:50:3', 'k')).toThrow(/more than one ':'/);
    expect(() => parseRate('0x10', 'k')).toThrow(/is not a number or a rate/);
    expect(() => parseRate('Infinity', 'k')).toThrow(/is not a number or a rate/);
    expect(() => parseRate('-1', 'k')).toThrow(/is not a number or a rate/);
    expect(() => parseRate('1e-30', 'k')).toThrow(/out of range/);
    expect(() => parseRate('1e30', 'k')).toThrow(/out of range/);
  });

  it('lets a burst through, then paces to the rate', async () => {
    const clock = fakeClock();
    const b = new TokenBucket(10, 3, clock);
    for (let i = 0; i < 3; i++) await b.take(1);
    expect(clock.slept).toEqual([]);
    await b.take(1);
    await b.take(1);
    expect(clock.slept).toEqual([100, 100]);
    clock.t += 10_000; // idle: refills only up to the burst
    for (let i = 0; i < 4; i++) await b.take(1);
    expect(clock.slept).toEqual([100, 100, 100]);
  });

  it('charges big takes (bytes) as debt paid back at the rate', async () => {
    const clock = fakeClock();
    const b = new TokenBucket(1000, 1000, clock);
    await b.take(3000);
    expect(clock.slept).toEqual([2000]);
  });
});
