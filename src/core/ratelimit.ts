/**
 * Token buckets for `operation.rate_limit`: `INTERVAL[:BURST]`, INTERVAL being the seconds one
 * token takes to come back, written as a number or a rate (`1/3e6`: 3 MB/s for bytes;
 * `1/10:50`: 10 objects a second with bursts of 50). BURST defaults to one second's worth.
 */
import { Transform } from 'node:stream';
import { sleep } from './timers.js';
import { ConfigError } from '../errors.js';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

// A debt can take longer than one Node timer holds (2³¹ ms): core/timers waits all of it.
const realClock: Clock = { now: () => Date.now(), sleep: (ms) => sleep(ms) };

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    private readonly clock: Clock = realClock,
  ) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes n tokens, waiting as long as the debt takes to pay back. */
  async take(n: number): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    this.tokens -= n;
    if (this.tokens < 0) await this.clock.sleep((-this.tokens / this.perSecond) * 1000);
  }

  /** A pass-through stream that pays one token per byte. */
  meter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.take(chunk.length).then(() => cb(null, chunk), cb);
      },
    });
  }
}

const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/** A positive decimal (no hex, no signs, no Infinity), or a quotient of two like 1/3e6. */
function number(text: string, key: string): number {
  const parts = text.split('/');
  if (parts.length > 2 || parts.some((p) => !DECIMAL.test(p.trim()))) {
    throw new ConfigError(`${key}: ${JSON.stringify(text)} is not a number or a rate like 1/10`);
  }
  const [a, b] = parts.map((p) => Number(p.trim()));
  if (b === 0) throw new ConfigError(`${key}: ${JSON.stringify(text)} divides by zero`);
  return b === undefined ? a! : a! / b;
}

/** Token rates outside these limits mean nothing (or overflow a timer): refused. */
const MIN_PER_SECOND = 1e-6;
const MAX_PER_SECOND = 1e12;

export function parseRate(spec: string | number | null, key: string): TokenBucket | undefined {
  if (spec === null) return undefined;
  const text = String(spec);
  const pieces = text.split(':');
  if (pieces.length > 2) throw new ConfigError(`${key}: ${JSON.stringify(text)} has more than one ':' (want INTERVAL[:BURST])`);
  const [intervalText, burstText] = pieces;
  const interval = number(intervalText!, key);
  if (!(interval > 0)) throw new ConfigError(`${key}: the interval must be more than 0`);
  const perSecond = 1 / interval;
  if (!(perSecond >= MIN_PER_SECOND && perSecond <= MAX_PER_SECOND)) {
    throw new ConfigError(`${key}: ${JSON.stringify(text)} is out of range (from ${MIN_PER_SECOND} to ${MAX_PER_SECOND} per second)`);
  }
  const burst = burstText === undefined ? Math.max(1, Math.ceil(perSecond)) : number(burstText, key);
  if (!(burst >= 1 && burst <= MAX_PER_SECOND)) throw new ConfigError(`${key}: the burst must be from 1 to ${MAX_PER_SECOND}`);
  return new TokenBucket(perSecond, burst);
}
