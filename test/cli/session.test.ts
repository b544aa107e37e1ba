/**
 * withSession (src/commands/session.ts), driven directly with a real entry cache (SQLite), its
 * real lock directory and a real client: what a command needs is open inside, the signal
 * handlers are wired once, and everything is closed newest first — client, cache, lock,
 * handlers — on success, on a typed error, on an interrupt, and when closing itself fails.
 * The close methods of the real objects are wrapped (and called through) only to record the
 * order and what was still open at each step.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { withSession, type Needs, type Session } from '../../src/commands/session.js';
import { loadConfig, type Config } from '../../src/config/load.js';
import { EXIT, InterruptedError, UsageError } from '../../src/errors.js';

function setup(): { config: Config; db: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lb-session-'));
  const db = join(dir, 'cache.db');
  // A port nothing listens on: the client is built, never asked.
  const config = loadConfig({ layers: [{ origin: 'test', values: { 'source.entry_cache.path': db, 'destination.url': 'http://127.0.0.1:9/uri' } }] });
  return { config, db };
}

const WRITE: Needs = { stop: true, lock: true, client: true, cache: { mode: 'write', missing: 'create', command: 'test' } };

const listeners = () => ({ SIGINT: process.listenerCount('SIGINT'), SIGTERM: process.listenerCount('SIGTERM') });

/** Wraps the session's client and cache close: each records what was still open when it ran. */
function recordCloses(s: Session, db: string, order: string[]): void {
  const state = (what: string) => `${what} (lock ${existsSync(`${db}.lock`) ? 'held' : 'free'}, ${process.listenerCount('SIGINT')} SIGINT listeners)`;
  const client = s.client!;
  const closeClient = client.close.bind(client);
  vi.spyOn(client, 'close').mockImplementation(async () => {
    order.push(state('client'));
    return closeClient();
  });
  const cache = s.cache!;
  const closeCache = cache.close.bind(cache);
  vi.spyOn(cache, 'close').mockImplementation(() => {
    order.push(state('cache'));
    closeCache();
  });
}

describe('withSession', () => {
  it('opens the cache (locked), the client and one handler per signal; on success closes client, cache, lock, handlers in that order', async () => {
    const { config, db } = setup();
    const before = listeners();
    const order: string[] = [];
    const inside: Record<string, unknown> = {};
    const r = await withSession(config, WRITE, async (s) => {
      inside.listeners = listeners();
      inside.lock = existsSync(`${db}.lock`);
      inside.cache = s.cache?.listBackups();
      inside.signal = s.signal.aborted;
      recordCloses(s, db, order);
      return 42;
    });
    expect(r).toBe(42);
    expect(inside).toEqual({ listeners: { SIGINT: before.SIGINT + 1, SIGTERM: before.SIGTERM + 1 }, lock: true, cache: [], signal: false });
    const n = before.SIGINT + 1;
    expect(order).toEqual([`client (lock held, ${n} SIGINT listeners)`, `cache (lock held, ${n} SIGINT listeners)`]);
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(listeners()).toEqual(before);
  });

  it('on a typed error: the same error comes out, everything closed in the same order', async () => {
    const { config, db } = setup();
    const before = listeners();
    const order: string[] = [];
    const err = new UsageError('bad input');
    await expect(
      withSession(config, WRITE, async (s) => {
        recordCloses(s, db, order);
        throw err;
      }),
    ).rejects.toBe(err);
    const n = before.SIGINT + 1;
    expect(order).toEqual([`client (lock held, ${n} SIGINT listeners)`, `cache (lock held, ${n} SIGINT listeners)`]);
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(listeners()).toEqual(before);
  });

  it('on SIGINT (its own handler called): the signal aborts, the stop is the outcome (130) whatever failed on the way out, and all is closed', async () => {
    const { config, db } = setup();
    const before = process.listeners('SIGINT');
    const order: string[] = [];
    const failure = withSession(config, WRITE, async (s) => {
      recordCloses(s, db, order);
      const added = process.listeners('SIGINT').filter((l) => !before.includes(l));
      expect(added).toHaveLength(1);
      // What a request in flight does when the signal aborts: it fails, with some other error.
      const request = new Promise((_, fail) => s.signal.addEventListener('abort', () => fail(new Error('request aborted'))));
      (added[0] as () => void)();
      return request;
    });
    const e = await failure.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InterruptedError);
    expect((e as InterruptedError).exitCode).toBe(EXIT.SIGINT);
    expect(order.map((o) => o.split(' ')[0])).toEqual(['client', 'cache']);
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(process.listeners('SIGINT')).toEqual(before);
  });

  it('a stop that fired ends the command with its reason even when fn returned (SIGTERM: 143), unless afterStop is return', async () => {
    const { config } = setup();
    const e = await withSession(config, { stop: true }, async (s) => {
      s.stop.interrupt('SIGTERM');
      return EXIT.OK;
    }).catch((x: unknown) => x);
    expect((e as InterruptedError).exitCode).toBe(EXIT.SIGTERM);
    // grid: the stop is its normal end.
    expect(
      await withSession(config, { stop: true, afterStop: 'return' }, async (s) => {
        s.stop.interrupt('SIGINT');
        return EXIT.OK;
      }),
    ).toBe(EXIT.OK);
  });

  it('without `stop` no handler is installed (a signal ends the process as it ends any program)', async () => {
    const { config } = setup();
    const before = listeners();
    await withSession(config, { client: true }, async () => {
      expect(listeners()).toEqual(before);
    });
  });

  it('a failure to close is the outcome only when fn succeeded; every other step still runs', async () => {
    const { config, db } = setup();
    const before = listeners();
    const broken = new Error('close failed');
    await expect(
      withSession(config, WRITE, async (s) => {
        vi.spyOn(s.client!, 'close').mockRejectedValue(broken);
      }),
    ).rejects.toBe(broken);
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(listeners()).toEqual(before);
    const first = new UsageError('the real trouble');
    await expect(
      withSession(config, WRITE, async (s) => {
        vi.spyOn(s.client!, 'close').mockRejectedValue(broken);
        throw first;
      }),
    ).rejects.toBe(first);
  });

  it('a cache that must exist and does not: one usage line naming it, nothing left open', async () => {
    const { config, db } = setup();
    const before = listeners();
    await expect(withSession(config, { stop: true, lock: true, cache: { mode: 'write', missing: 'error', command: 'cleanup', verb: 'clean up' } }, async () => 0)).rejects.toThrow(
      `source.entry_cache.path: ${db} does not exist (nothing to clean up; has a backup run?)`,
    );
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(listeners()).toEqual(before);
  });

  it('closeCache closes the cache early (a backup before its after hook) and the lock stays until the end', async () => {
    const { config, db } = setup();
    await withSession(config, WRITE, async (s) => {
      const cache = s.cache!;
      s.closeCache();
      expect(s.cache).toBeUndefined();
      expect(() => cache.listBackups()).toThrow();
      expect(existsSync(`${db}.lock`)).toBe(true);
    });
    expect(existsSync(`${db}.lock`)).toBe(false);
  });
});
