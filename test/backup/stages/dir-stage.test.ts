/**
 * The directory stage driven directly, with the in-memory grid and cache (fakes.ts): a
 * directory made once its children are done, reused when known, its listing recorded only
 * when every child is cached as it is, answered whole by a listing row, and a stop in each
 * state a directory can be in. No clock: the tests hold children and the grid's answers.
 */
import { mkdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirKey } from '../../../src/cache/keys.js';
import type { Child } from '../../../src/core/child.js';
import { InterruptedError } from '../../../src/errors.js';
import { DirStage } from '../../../src/backup/dir-stage.js';
import { edgeMetadata } from '../../../src/backup/meta.js';
import { tempDir } from '../../support/tree.js';
import { deferred, entryOf, EventLog, FakeCache, FakeGrid } from './fakes.js';

function setUp(concurrency = 2) {
  const root = tempDir('lb-dirs-');
  const ctl = new AbortController();
  const grid = new FakeGrid(ctl.signal);
  const cache = new FakeCache();
  const events = new EventLog();
  const stage = new DirStage({ root: Buffer.from(root), client: grid, cache, concurrency, emit: events.sink, signal: ctl.signal, fail: (e) => ctl.abort(e) });
  const dir = (rel: string) => {
    mkdirSync(join(root, rel), { recursive: true });
    utimesSync(join(root, rel), new Date(3_600_000), new Date(3_600_000));
    return entryOf(root, rel);
  };
  return { root, grid, cache, events, stage, dir, ctl, stop: () => ctl.abort(new InterruptedError('SIGTERM')) };
}

const file = (name: string, cap: string, row?: string): Child => ({ name, type: 'filenode', cap, metadata: { uid: '0', gid: '0', mode: '100644', mtime: '1.000000000' }, ...(row ? { row: Buffer.from(row) } : {}) });

describe('the directory stage', () => {
  it('waits for its children, then creates the directory with them in name order, once', async () => {
    const t = setUp();
    const { e, st } = t.dir('d');
    const late = deferred<Child | null>();
    const made = t.stage.save(e, st, [file('b', 'fake:b'), late.promise, null], undefined);
    // Nothing is made while a child is not done.
    expect(t.grid.dirs).toHaveLength(0);
    late.resolve(file('a', 'fake:a'));
    const child = await made;
    expect(t.grid.dirs).toEqual([[file('a', 'fake:a'), file('b', 'fake:b')]]);
    expect(child).toMatchObject({ name: 'd', type: 'dirnode', cap: 'fake:dir:0' });
    expect(t.events.types()).toEqual(['dir-created']);
  });

  it('reuses a directory the cache knows with exactly these children and this metadata', async () => {
    const t = setUp();
    const { e, st } = t.dir('d');
    const kids = [file('a', 'fake:a')];
    t.cache.rows.set(dirKey(edgeMetadata(e, { mtimeNs: st.mtimeNs }), kids).toString('hex'), { kind: 'dir', cap: 'fake:known-dir' });
    const child = await t.stage.save(e, st, kids, undefined);
    expect(child!.cap).toBe('fake:known-dir');
    expect(t.grid.dirs).toHaveLength(0);
    expect(t.events.types()).toEqual(['dir-reused']);
  });

  it('records its listing only when every child is cached as it is', async () => {
    const t = setUp();
    const whole = t.dir('whole');
    const part = t.dir('part');
    const a = await t.stage.save(whole.e, whole.st, [file('a', 'fake:a', 'row-a')], Buffer.from('listing-whole'));
    const b = await t.stage.save(part.e, part.st, [file('a', 'fake:a', 'row-a'), file('b', 'fake:b')], Buffer.from('listing-part'));
    expect(t.cache.told.filter((x) => x.what === 'list').map((x) => Buffer.from(x.key, 'hex').toString())).toEqual(['listing-whole']);
    expect(a!.row?.toString()).toBe('listing-whole');
    expect(b!.row).toBeUndefined();
  });

  it('answers a directory whole from its listing row: no job, no request', () => {
    const t = setUp();
    const { e, st } = t.dir('d');
    t.cache.rows.set(Buffer.from('listing').toString('hex'), { kind: 'listing', cap: 'fake:listed' });
    expect(t.stage.listed(e, st, Buffer.from('other'), { files: 0, symlinks: 0, bytes: 0 })).toBeUndefined();
    const child = t.stage.listed(e, st, Buffer.from('listing'), { files: 3, symlinks: 1, bytes: 300 });
    expect(child).toMatchObject({ name: 'd', type: 'dirnode', cap: 'fake:listed' });
    expect(t.events.list).toEqual([{ type: 'dir-listed', path: Buffer.from('d'), files: 3, symlinks: 1, bytes: 300 }]);
    expect(t.grid.dirs).toHaveLength(0);
  });

  describe('a stop', () => {
    it('ends a directory waiting for its children', async () => {
      const t = setUp();
      const { e, st } = t.dir('d');
      const child = deferred<Child | null>();
      const made = t.stage.save(e, st, [child.promise], undefined);
      t.stop();
      // The file stage fails its jobs with the stop's reason.
      child.reject(t.ctl.signal.reason);
      await expect(made).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.dirs).toHaveLength(0);
      expect(t.cache.told).toEqual([]);
    });

    it('cancels a directory being created, and drops one waiting for a place', async () => {
      const t = setUp(1);
      const d1 = t.dir('d1');
      const d2 = t.dir('d2');
      t.grid.hold();
      const first = t.stage.save(d1.e, d1.st, [file('a', 'fake:a')], undefined);
      await t.grid.received(1);
      const second = t.stage.save(d2.e, d2.st, [file('b', 'fake:b')], undefined);
      t.stop();
      await expect(first).rejects.toBeInstanceOf(InterruptedError);
      await expect(second).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.dirs).toHaveLength(1);
      expect(t.cache.told).toEqual([]);
      expect(() => t.stage.room()).toThrow(InterruptedError);
    });
  });
});
