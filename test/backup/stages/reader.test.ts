/**
 * Phase 2's reader driven directly over a real queue written by a real walk, with the real
 * file and directory stages and the in-memory grid and cache (fakes.ts): the listing keys the
 * walk made (backup/listing-plan.ts) answer an unchanged directory without its children being
 * stat'ed again, and never answer one that changed or a queue the walk did not write. Phase 2's
 * stats are counted through the reader's `source` port.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listingSalt } from '../../../src/cache/keys.js';
import { DirStage } from '../../../src/backup/dir-stage.js';
import { FileStage } from '../../../src/backup/file-stage.js';
import { ListingPlanner } from '../../../src/backup/listing-plan.js';
import { readQueueFile } from '../../../src/backup/reader.js';
import { SourceStats } from '../../../src/backup/source-stat.js';
import { buildQueue } from '../../../src/scan/phase1.js';
import { tempDir } from '../../support/tree.js';
import { FUTURE, smallTree } from './small-tree.js';
import { EventLog, FakeCache, FakeGrid, rawXz } from './fakes.js';

const SALT = listingSalt({ test: 1 });
const tree = () => smallTree('lb-reader-');

/** Phase 1 (a real walk and queue file), with or without the planner, then phase 2 over it. */
async function backup(root: string, cache: FakeCache, opts: { plan: boolean; between?: (queuePath: string) => Promise<void> }) {
  const queuePath = join(tempDir('lb-reader-q-'), 'queue.txt');
  const planner = new ListingPlanner(SALT, FUTURE);
  await buildQueue({ source: root, queuePath, filter: [], onQueued: opts.plan ? planner.queued : undefined });
  await opts.between?.(queuePath);
  const ctl = new AbortController();
  const grid = new FakeGrid(ctl.signal);
  const events = new EventLog();
  const common = { root: Buffer.from(root), client: grid, cache, concurrency: 2, emit: events.sink, signal: ctl.signal, fail: (e: unknown) => ctl.abort(e) };
  const files = new FileStage({ ...common, xz: rawXz(), encoders: 1, prehash: true, trustNs: 2_000_000_000n });
  const dirs = new DirStage(common);
  const real = new SourceStats(Buffer.from(root));
  const statted: string[] = [];
  const source = { lstat: (rel: Buffer) => (statted.push(rel.toString()), real.lstat(rel)) };
  try {
    const child = await readQueueFile({ queuePath, root: Buffer.from(root), source, files, dirs, listingSalt: SALT, trustedBefore: FUTURE, metaSince: FUTURE, emit: events.sink, signal: ctl.signal, fail: common.fail, plan: opts.plan ? planner : undefined });
    return { cap: child.cap, statted, grid, events };
  } finally {
    real.close();
  }
}

const names = (children: { name: string }[]) => children.map((c) => c.name).sort();

describe("phase 2 and the listing keys of this run's walk", () => {
  it('answers unchanged directories from the keys the walk made: only the directories are stat’ed again', async () => {
    const root = tree();
    const cache = new FakeCache();
    const first = await backup(root, cache, { plan: true });
    // Nothing known yet: every entry stat'ed by phase 2, every file uploaded, listings recorded.
    expect(first.statted.sort()).toEqual(['', 'a', 'a/1', 'a/2', 'b', 'b/3', 'b/c', 'b/c/4', 'b/c/5', 'top']);
    expect(first.grid.files).toHaveLength(6);
    const again = await backup(root, cache, { plan: true });
    expect(again.cap).toBe(first.cap);
    // The root is answered whole by its planned listing: its children, files and subdirectories
    // alike, are never stat'ed; without the plan, phase 2 stats each entry once more.
    expect(again.statted.sort()).toEqual(['', 'a', 'b', 'b/c']);
    expect(again.grid.files).toHaveLength(0);
    expect(again.grid.dirs).toHaveLength(0);
    const without = await backup(root, cache, { plan: false });
    expect(without.cap).toBe(first.cap);
    expect(without.statted.sort()).toEqual(first.statted.sort());
  });

  it('a directory changed before the walk is not answered by its plan; the others still are', async () => {
    const root = tree();
    const cache = new FakeCache();
    await backup(root, cache, { plan: true });
    writeFileSync(join(root, 'b/c/4'), 'new contents\n');
    const again = await backup(root, cache, { plan: true });
    // b/c changed (and so b and the root, whose keys hold b/c's): their files are stat'ed and
    // the changed one uploaded; a is answered by its planned listing, its files untouched.
    expect(again.statted.sort()).toEqual(['', 'a', 'b', 'b/3', 'b/c', 'b/c/4', 'b/c/5', 'top']);
    expect(again.grid.files.map(String)).toEqual(['new contents\n']);
    // Made again: b/c, b and the root — not a.
    expect(again.grid.dirs.map(names)).toEqual([['4', '5'], ['3', 'c'], ['a', 'b', 'top']]);
  });

  it('a directory whose lines are not the ones the walk queued (the queue replaced since) is not answered by its plan', async () => {
    const root = tree();
    mkdirSync(join(root, 'e'));
    const cache = new FakeCache();
    await backup(root, cache, { plan: true });
    await backup(root, cache, { plan: true });
    // The walk plans e as it is (empty: its key is that of every empty directory, with its
    // path); then a file appears in e and the queue file is written again before phase 2. The
    // plan's record for e matches e's path, but not its lines: e is not answered by the listing
    // of empty e, and its new file is in the backup.
    const swapped = await backup(root, cache, {
      plan: true,
      between: async (queuePath) => {
        writeFileSync(join(root, 'e/new'), 'new\n');
        await buildQueue({ source: root, queuePath, filter: [] });
      },
    });
    expect(swapped.statted).toContain('e/new');
    expect(swapped.grid.files.map(String)).toEqual(['new\n']);
    expect(swapped.grid.dirs.map(names)).toEqual([['new'], ['a', 'b', 'e', 'top']]);
  });
});
