/**
 * Crashes: a seeded loop of SIGKILLs at random points of both phases, each followed by a
 * rerun. The final root cap equals a clean run's, the cache passes integrity_check, and the
 * bytes uploaded over all runs stay within 1.1× of one clean run.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project } from '../support/backup.js';
import { spawnCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();

/** mulberry32: a small seeded PRNG, so a failing sequence of kill points can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.LAFS_CRASH_SEED ?? 20261121);
// 16 kills keep CI under its budget; LAFS_CRASH_KILLS=100 for a longer soak.
const KILLS = Number(process.env.LAFS_CRASH_KILLS ?? 16);

describe('crashes', () => {
  itEmbedded(`survives ${KILLS} SIGKILLs at seeded random points (seed ${SEED})`, async () => {
    const dir = tempDir();
    const spec: Spec = {};
    for (let d = 0; d < 30; d++) {
      const files: Spec = {};
      for (let f = 0; f < 60; f++) files[`f${f}.bin`] = randomBytes(4096);
      spec[`d${d}`] = files;
    }
    makeTree(join(dir, 'src'), spec);
    const extra = "operation: {rate_limit: {bytes: '1/6e6'}}\nsource: {entry_cache: {commit_after: {queries: 1, seconds: 1}}}\n";
    mkdirSync(join(dir, 'clean'));
    env.grid.resetStats();
    const clean = project(join(dir, 'clean'), join(dir, 'src'), env.url, extra);
    const t0 = Date.now();
    const cleanRun = await backup(clean);
    const cleanMs = Date.now() - t0;
    const cleanBytes = env.grid.stats.bytes_uploaded;
    expect(cleanRun.code).toBe(0);

    const p = project(dir, join(dir, 'src'), env.url, extra);
    const random = prng(SEED);
    env.grid.resetStats();
    const points: number[] = [];
    for (let i = 0; i < KILLS; i++) {
      // A third of the kills land early (start-up and phase 1), the rest anywhere in the run.
      const at = Math.round(random() < 0.33 ? random() * 600 : random() * cleanMs);
      points.push(at);
      const child = spawnCli([...configArgs(p), 'backup']);
      child.stdout!.resume();
      child.stderr!.resume();
      const closed = new Promise((ok) => child.on('close', ok));
      await new Promise((ok) => setTimeout(ok, at));
      child.kill('SIGKILL');
      await closed;
    }
    const final = await backup(p);
    expect(final.code, `kill points ${points.join(',')}: ${final.stderr}`).toBe(0);
    expect(final.cap).toBe(cleanRun.cap);
    expect(cacheRows(p.cache, 'PRAGMA integrity_check')[0]!.integrity_check).toBe('ok');
    const ratio = env.grid.stats.bytes_uploaded / cleanBytes;
    console.log(`crash loop: seed ${SEED}, ${KILLS} kills at ${points.join(',')} ms; bytes uploaded ${ratio.toFixed(3)}× a clean run (${cleanMs} ms)`);
    expect(ratio, `bytes uploaded: ${ratio.toFixed(3)}× a clean run (kill points ${points.join(',')})`).toBeLessThanOrEqual(1.1);
    // No temporary queue files pile up from the killed runs.
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-')).length).toBeLessThanOrEqual(1);
  }, 180_000);
});
