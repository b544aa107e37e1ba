/**
 * Phase 2 answered from the walk's plan alone (backup/plan-answer.ts), over a real queue written
 * by a real walk, with the real directory stage and the in-memory cache (fakes.ts): on an
 * unchanged tree it gives the reader's answer without reading a line, and it answers nothing —
 * no event, no stat, no row raised — when a directory is unknown, the plan is not whole, or the
 * queue file is not the one the walk wrote.
 */
import { appendFileSync, linkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listingSalt } from '../../../src/cache/keys.js';
import { DirStage } from '../../../src/backup/dir-stage.js';
import { FileStage } from '../../../src/backup/file-stage.js';
import { ListingPlanner } from '../../../src/backup/listing-plan.js';
import { answerByPlan } from '../../../src/backup/plan-answer.js';
import { readQueueFile } from '../../../src/backup/reader.js';
import { SourceStats } from '../../../src/backup/source-stat.js';
import { tally } from '../../../src/backup/tally.js';
import { buildQueue } from '../../../src/scan/phase1.js';
import { tempDir } from '../../support/tree.js';
import { FUTURE, HOUR_AGO, smallTree } from './small-tree.js';
import { EventLog, FakeCache, FakeGrid, rawXz } from './fakes.js';

const SALT = listingSalt({ test: 'plan-answer' });
const tree = () => smallTree('lb-plan-');

/** Phase 1 with the planner; then the plan's answer (or, with `reader`, the reader's), as phase 2 would try them. */
async function run(root: string, cache: FakeCache, opts: { reader?: boolean; between?: (queuePath: string) => void } = {}) {
  const queuePath = join(tempDir('lb-plan-q-'), 'queue.txt');
  const planner = new ListingPlanner(SALT, FUTURE);
  const scan = await buildQueue({ source: root, queuePath, filter: [], onQueued: planner.queued });
  opts.between?.(queuePath);
  const ctl = new AbortController();
  const grid = new FakeGrid(ctl.signal);
  const events = new EventLog();
  const common = { root: Buffer.from(root), client: grid, cache, concurrency: 2, emit: events.sink, signal: ctl.signal, fail: (e: unknown) => ctl.abort(e) };
  const dirs = new DirStage(common);
  const real = new SourceStats(Buffer.from(root));
  const statted: string[] = [];
  const source = { lstat: (rel: Buffer) => (statted.push(rel.toString()), real.lstat(rel)) };
  const before = cache.told.length;
  const raised = () => cache.told.slice(before).filter((t) => t.what === 'reuse').length;
  try {
    if (opts.reader) {
      const files = new FileStage({ ...common, xz: rawXz(), encoders: 1, prehash: true, trustNs: 2_000_000_000n });
      const child = await readQueueFile({ queuePath, root: Buffer.from(root), source, files, dirs, listingSalt: SALT, trustedBefore: FUTURE, metaSince: FUTURE, emit: events.sink, signal: ctl.signal, fail: common.fail, plan: planner });
      return { cap: child.cap, statted, events, raised: raised() };
    }
    const child = await answerByPlan({ queuePath, plan: planner, written: scan.written!, cache, dirs, source, root: Buffer.from(root), metaSince: FUTURE, signal: ctl.signal });
    return { cap: child?.cap, statted, events, raised: raised() };
  } finally {
    real.close();
  }
}

/** The tally's counts (the summary, --json and progress read these). */
function counts(events: EventLog): Record<string, unknown> {
  return { ...tally(events.list) };
}

describe("phase 2 answered from the walk's plan alone", () => {
  it("on an unchanged tree: the reader's cap and counts, no line read, only the directories stat'ed", async () => {
    const root = tree();
    const cache = new FakeCache();
    const first = await run(root, cache, { reader: true });
    // The reader's second night (every directory answered by its plan) is what the shortcut must equal.
    const byReader = await run(root, cache, { reader: true });
    const byPlan = await run(root, cache);
    expect(byPlan.cap).toBe(first.cap);
    expect(byPlan.cap).toBe(byReader.cap);
    // As the reader: each directory stat'ed again (one gone is left out there), no file.
    expect(byPlan.statted.sort()).toEqual(byReader.statted.sort());
    expect(byPlan.statted.sort()).toEqual(['', 'a', 'b', 'b/c']);
    expect(byPlan.events.types()).toEqual(byReader.events.types());
    expect(counts(byPlan.events)).toEqual(counts(byReader.events));
    expect(counts(byPlan.events)).toMatchObject({ filesReused: 6, dirsReused: 4 });
    // Every listing row raised, as the reader raises them: one per directory.
    expect(byPlan.raised).toBe(byReader.raised);
    expect(byPlan.raised).toBe(4);
  });

  it('answers nothing when one directory is not known: no event, no stat, no row raised', async () => {
    const root = tree();
    const cache = new FakeCache();
    await run(root, cache, { reader: true });
    writeFileSync(join(root, 'b/c/new'), 'new\n');
    utimesSync(join(root, 'b/c/new'), HOUR_AGO, HOUR_AGO);
    const r = await run(root, cache);
    expect(r.cap).toBeUndefined();
    expect(r.events.list).toEqual([]);
    expect(r.statted).toEqual([]);
    expect(r.raised).toBe(0);
  });

  it('answers nothing when the queue file is not the one the walk wrote (a byte added after it)', async () => {
    const root = tree();
    const cache = new FakeCache();
    await run(root, cache, { reader: true });
    expect((await run(root, cache)).cap).toBeDefined();
    const r = await run(root, cache, { between: (q) => appendFileSync(q, '\n') });
    expect(r.cap).toBeUndefined();
    expect(r.events.list).toEqual([]);
  });

  it('answers nothing when a directory is gone since the walk (the reader leaves it out and makes its parent again)', async () => {
    const root = tree();
    const cache = new FakeCache();
    await run(root, cache, { reader: true });
    const r = await run(root, cache, { between: () => rmSync(join(root, 'b/c'), { recursive: true }) });
    expect(r.cap).toBeUndefined();
    expect(r.events.list).toEqual([]);
    expect(r.raised).toBe(0);
  });

  it('answers nothing when the plan is not whole (a file with two links has no planned listing)', async () => {
    const root = tree();
    linkSync(join(root, 'a/1'), join(root, 'a/1-again'));
    const cache = new FakeCache();
    await run(root, cache, { reader: true });
    await run(root, cache, { reader: true });
    const r = await run(root, cache);
    expect(r.cap).toBeUndefined();
    expect(r.events.list).toEqual([]);
    expect(r.statted).toEqual([]);
  });
});
