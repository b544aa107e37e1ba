/**
 * The file stage driven directly, with an in-memory grid and cache (fakes.ts) and real files:
 * unchanged files answered at once, twins in flight, same-size comparisons, hard links, the
 * plaintext size on xz edges, and a stop in every state a file can be in. No test waits on a
 * clock: each waits on what the stage did (a call received, an event emitted) and holds the
 * grid's answers until it lets them go.
 */
import { linkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileKey } from '../../../src/cache/keys.js';
import type { Child } from '../../../src/core/child.js';
import { InterruptedError } from '../../../src/errors.js';
import { FileStage, type FileStageOptions, type Saved } from '../../../src/backup/file-stage.js';
import { tempDir } from '../../support/tree.js';
import { entryOf, EventLog, FakeCache, FakeGrid, rawXz } from './fakes.js';

const HOUR_AGO = new Date(Date.now() - 3600_000);
const BIG = 300 * 1024;

function setUp(over: Partial<FileStageOptions> = {}) {
  const root = tempDir('lb-stage-');
  const ctl = new AbortController();
  const grid = new FakeGrid(ctl.signal);
  const cache = new FakeCache();
  const events = new EventLog();
  const stage = new FileStage({
    root: Buffer.from(root),
    client: grid,
    cache,
    xz: rawXz(),
    concurrency: 4,
    encoders: 1,
    prehash: true,
    trustNs: 2_000_000_000n,
    emit: events.sink,
    signal: ctl.signal,
    fail: (e) => ctl.abort(e),
    ...over,
  });
  const write = (rel: string, data: string | Buffer) => {
    writeFileSync(join(root, rel), data);
    utimesSync(join(root, rel), HOUR_AGO, HOUR_AGO);
  };
  const save = (rel: string): Saved => {
    const { e, st } = entryOf(root, rel);
    return stage.save(e, st);
  };
  const stop = () => ctl.abort(new InterruptedError('SIGINT'));
  return { root, grid, cache, events, stage, write, save, stop, ctl };
}

/** Waits, turn by turn of the event loop (never on a clock), until the stage is in the state `pred` says. */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((ok) => setImmediate(ok));
}

/** Same size, chosen first block and tail. */
function bigFile(head: number, tail: number): Buffer {
  const b = Buffer.alloc(BIG, head);
  b.fill(tail, BIG - 1024);
  return b;
}

describe('the file stage', () => {
  it('answers an unchanged file at once from the cache: a Child, no job, no promise, no upload', async () => {
    const t = setUp();
    t.write('a.txt', 'hello');
    const { e, st } = entryOf(t.root, 'a.txt');
    t.cache.rows.set(fileKey({ path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino, encoding: 'none' }).toString('hex'), { kind: 'file', cap: 'fake:known', ctimeNs: st.ctimeNs, xattrs: '' });
    const saved = t.stage.save(e, st);
    expect(saved).not.toBeInstanceOf(Promise);
    expect((saved as Child).cap).toBe('fake:known');
    expect(t.events.list).toEqual([{ type: 'file-reused', path: e.path, size: 5, why: 'unchanged' }]);
    await t.stage.settled();
    expect(t.grid.files).toHaveLength(0);
  });

  it('twins in flight: a file with the contents another file is uploading waits for it and takes its cap', async () => {
    const t = setUp();
    t.write('a.txt', 'same contents');
    t.write('b.txt', 'same contents');
    t.grid.hold();
    const a = t.save('a.txt');
    await t.grid.received(1);
    const b = t.save('b.txt');
    // b has read its bytes; from there to waiting on a's upload nothing awaits.
    await t.events.when((ev) => ev.filter((e) => e.type === 'read').length === 2);
    expect(t.grid.files).toHaveLength(1);
    t.grid.release();
    const [ca, cb] = await Promise.all([a, b]);
    expect(cb!.cap).toBe(ca!.cap);
    expect(t.grid.files).toHaveLength(1);
    expect(t.events.types()).toEqual(['file-uploaded', 'file-deduplicated']);
    await t.stage.settled();
    expect(t.stage.inFlight).toBe(0);
  });

  it('same size, another first block: both go up side by side, neither is hashed', async () => {
    const t = setUp();
    t.write('a.bin', bigFile(1, 9));
    t.write('b.bin', bigFile(2, 9));
    t.grid.hold();
    const a = t.save('a.bin');
    await t.grid.received(1);
    const b = t.save('b.bin');
    // b's upload arrives while a's is still held: nothing made b wait.
    await t.grid.received(2);
    t.grid.release();
    await Promise.all([a, b]);
    expect(t.events.hashed()).toBe(0);
    expect(t.events.types()).toEqual(['file-uploaded', 'file-uploaded']);
    await t.stage.settled();
    expect(t.stage.inFlight).toBe(0);
  });

  it('same size and first block, other contents: hashed, waits for the first, then goes up itself', async () => {
    const t = setUp();
    t.write('a.bin', bigFile(1, 8));
    t.write('c.bin', bigFile(1, 9));
    t.grid.hold();
    const a = t.save('a.bin');
    await t.grid.received(1);
    const c = t.save('c.bin');
    // c has hashed itself whole; from there to waiting on a's result nothing awaits.
    await t.events.when(() => t.events.hashed() === BIG);
    expect(t.grid.files).toHaveLength(1);
    t.grid.release();
    const [ca, cc] = await Promise.all([a, c]);
    expect(cc!.cap).not.toBe(ca!.cap);
    expect(t.grid.files.map((f) => f.equals(bigFile(1, 9)))).toEqual([false, true]);
    expect(t.grid.answered).toEqual([0, 1]);
    await t.stage.settled();
    expect(t.stage.inFlight).toBe(0);
  });

  it('same size, same contents: the second waits for the first and is not uploaded', async () => {
    const t = setUp();
    t.write('a.bin', bigFile(1, 8));
    t.write('c.bin', bigFile(1, 8));
    t.grid.hold();
    const a = t.save('a.bin');
    await t.grid.received(1);
    const c = t.save('c.bin');
    await t.events.when(() => t.events.hashed() === BIG);
    t.grid.release();
    const [ca, cc] = await Promise.all([a, c]);
    expect(cc!.cap).toBe(ca!.cap);
    expect(t.grid.files).toHaveLength(1);
    expect(t.events.types()).toEqual(['file-uploaded', 'file-deduplicated']);
  });

  it('hard links: the group goes up once; every link takes the cap and names the first', async () => {
    const t = setUp();
    t.write('h1', 'linked contents');
    linkSync(join(t.root, 'h1'), join(t.root, 'h2'));
    const [c1, c2] = await Promise.all([t.save('h1'), t.save('h2')]);
    expect(t.grid.files).toHaveLength(1);
    expect(c2!.cap).toBe(c1!.cap);
    expect([c1!.metadata.hardlink, c2!.metadata.hardlink]).toEqual(['h1', 'h1']);
    // A link group's edge depends on another entry: never a row a listing could stand for.
    expect([c1!.row, c2!.row]).toEqual([undefined, undefined]);
    expect(t.events.list.filter((e) => e.type === 'file-reused')).toEqual([{ type: 'file-reused', path: Buffer.from('h2'), size: 15, why: 'linked' }]);
  });

  it('an xz file carries the size of its plaintext, uploaded or reused; a raw one does not', async () => {
    const t = setUp({ xz: rawXz(true) });
    const text = 'compressible line\n'.repeat(2000);
    t.write('log.txt', text);
    t.write('small.txt', 'tiny');
    const [big, small] = await Promise.all([t.save('log.txt'), t.save('small.txt')]);
    expect(big!.metadata).toMatchObject({ enc: 'xz', size: String(text.length) });
    expect(Object.keys(big!.metadata)).toEqual(['uid', 'gid', 'mode', 'mtime', 'enc', 'size']);
    expect(small!.metadata.size).toBeUndefined();
    // The cache now has the file: the next run answers it at once, with the same edge.
    const again = t.save('log.txt') as Child;
    expect(again.metadata).toEqual(big!.metadata);
  });

  describe('a stop', () => {
    it('drops a job still waiting for a place, and fails the upload in flight', async () => {
      const t = setUp({ concurrency: 1 });
      t.write('a.txt', 'first');
      t.write('b.txt', 'second');
      t.grid.hold();
      const a = t.save('a.txt');
      await t.grid.received(1);
      const b = t.save('b.txt');
      t.stop();
      await expect(a).rejects.toBeInstanceOf(InterruptedError);
      await expect(b).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
      expect(t.cache.uploaded).toEqual([]);
      expect(t.stage.inFlight).toBe(0);
    });

    it('ends a twin waiting for the first of its contents', async () => {
      const t = setUp();
      t.write('a.txt', 'same');
      t.write('b.txt', 'same');
      t.grid.hold();
      const a = t.save('a.txt');
      await t.grid.received(1);
      const b = t.save('b.txt');
      await t.events.when((ev) => ev.filter((e) => e.type === 'read').length === 2);
      t.stop();
      await expect(a).rejects.toBeInstanceOf(InterruptedError);
      await expect(b).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
      expect(t.cache.uploaded).toEqual([]);
      expect(t.stage.inFlight).toBe(0);
    });

    it('ends a same-size comparison waiting for the other file', async () => {
      const t = setUp();
      t.write('a.bin', bigFile(1, 8));
      t.write('c.bin', bigFile(1, 9));
      t.grid.hold();
      const a = t.save('a.bin');
      await t.grid.received(1);
      const c = t.save('c.bin');
      await t.events.when(() => t.events.hashed() === BIG);
      t.stop();
      await expect(a).rejects.toBeInstanceOf(InterruptedError);
      await expect(c).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
      expect(t.stage.inFlight).toBe(0);
    });

    it('ends a file waiting for an xz encoder', async () => {
      const t = setUp({ xz: rawXz(true), encoders: 1 });
      // Of two sizes: no same-size comparison comes first.
      const text = (n: number) => `line ${n}\n`.repeat(40_000 + n);
      t.write('a.log', text(1));
      t.write('b.log', text(2));
      t.grid.hold();
      const a = t.save('a.log');
      // a holds the one encoder while its upload is held; b reads its sample and waits for it.
      await t.grid.received(1);
      const b = t.save('b.log');
      await until(() => t.stage.load.encoding === 2);
      t.stop();
      await expect(a).rejects.toBeInstanceOf(InterruptedError);
      await expect(b).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
    });

    it('ends a later hard link waiting for its group', async () => {
      const t = setUp();
      t.write('h1', 'linked');
      linkSync(join(t.root, 'h1'), join(t.root, 'h2'));
      t.grid.hold();
      const h1 = t.save('h1');
      await t.grid.received(1);
      const h2 = t.save('h2');
      t.stop();
      await expect(h1).rejects.toBeInstanceOf(InterruptedError);
      await expect(h2).rejects.toBeInstanceOf(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
    });

    it('ends the reader\'s wait for room, and refuses new work at once', async () => {
      const t = setUp({ concurrency: 1 });
      t.grid.hold();
      // One running and four waiting (the backlog) fill the stage.
      const saved: Saved[] = [];
      for (let i = 0; i < 5; i++) {
        t.write(`f${i}`, `file ${i}`);
        saved.push(t.save(`f${i}`));
      }
      const room = t.stage.room();
      expect(room).toBeInstanceOf(Promise);
      t.stop();
      await expect(room).rejects.toBeInstanceOf(InterruptedError);
      for (const s of saved) await expect(s).rejects.toBeInstanceOf(InterruptedError);
      t.write('late', 'late');
      await expect(t.save('late')).rejects.toBeInstanceOf(InterruptedError);
      expect(() => t.stage.room()).toThrow(InterruptedError);
      await t.stage.settled();
      expect(t.grid.files).toHaveLength(1);
    });

    it('a fatal error of one job stops the run, with that error', async () => {
      const t = setUp();
      t.write('a.txt', 'a');
      t.grid.putFile = () => Promise.reject(new Error('gateway gone'));
      await expect(t.save('a.txt')).rejects.toThrow('gateway gone');
      expect(t.ctl.signal.aborted).toBe(true);
      expect((t.ctl.signal.reason as Error).message).toBe('gateway gone');
    });
  });
});
