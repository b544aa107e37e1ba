/**
 * `check` forgets what the grid lost (issue 24.5): a file, a directory or a root found
 * unrecoverable goes from the entry cache with the directories above it, so the next backup
 * uploads it again — and says so in one line. The embedded grid's control surface loses
 * shares; against a real gateway (LAFS_TEST_GATEWAY) a cap the grid never had is planted in
 * the cache instead, which is what the cache holds after a loss.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockCache } from '../../src/cache/lock.js';
import { startGrid, type Grid } from '../../src/grid/server.js';
import { cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, type CliResult } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { capAt, neverStored, plant } from '../support/planted.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

// Trees made once, more than two seconds before their first backup: their directories are then
// answered by listing rows (an unchanged directory is one row), the rows a loss must reach.
const trees: Project[] = [];
beforeAll(async () => {
  for (let i = 0; i < 7; i++) {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { top: randomBytes(2000), sub: { x: randomBytes(3000), y: randomBytes(3500), deeper: { z: randomBytes(4000) } }, other: { w: randomBytes(4500) } });
    trees.push(project(dir, join(dir, 'src'), env.url, 'destination: {encoding: {xz: {enabled: false}}}\n'));
  }
  await new Promise((ok) => setTimeout(ok, 2100));
});
const tree = () => trees.pop()!;
const listings = (p: Project) => Number(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries WHERE kind = 3')[0]!.n);

async function backupOf(p: Project, args = configArgs(p)): Promise<CliResult & { cap: string; uploaded: number; created: number }> {
  const r = await runCli([...args, 'backup', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as { cap: string; files: { uploaded: number }; directories: { created: number } };
  return { ...r, cap: s.cap, uploaded: s.files.uploaded, created: s.directories.created };
}

const check = (p: Project, ...more: string[]) => runCli([...configArgs(p), 'check', ...more]);
const rowCount = (p: Project) => Number(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries')[0]!.n);

describe('check forgets what the grid lost (24.5)', () => {
  itEmbedded('a file whose shares are lost: forgotten with the directories above it; the next backup uploads it again', async () => {
    const p = tree();
    const first = await backupOf(p);
    expect(listings(p)).toBe(4);
    env.grid.damage(await capAt(env.url, first.cap, ['sub', 'x']));
    const found = await check(p);
    expect(found.code).toBe(4);
    expect(found.stdout).toMatch(/^src: \/sub\/x \(file\): Not Healthy: 0 shares/m);
    expect(found.stdout).toMatch(/^src: 1 lost file and the 2 directories above it are forgotten in the entry cache \(\d+ rows\): the next backup uploads them again$/m);
    // Before, the cache reused the lost cap every night: only --disable-deduplication recovered.
    const next = await backupOf(p);
    expect([next.cap, next.uploaded, next.created]).toEqual([first.cap, 1, 2]);
    const healthy = await check(p);
    expect(healthy.code, healthy.stdout).toBe(0);
  });

  itEmbedded('a lost directory (the gateway ends its stream there): forgotten with the one above it; the next backup makes both again', async () => {
    const p = tree();
    const first = await backupOf(p);
    env.grid.damage(await capAt(env.url, first.cap, ['sub']));
    const found = await check(p);
    expect(found.code).toBe(4);
    expect(found.stdout).toMatch(/^src: check failed: the gateway stopped the check: NoSharesError/m);
    expect(found.stdout).toMatch(/^src: 1 lost directory and the directory above it are forgotten in the entry cache \(\d+ rows\): the next backup uploads them again$/m);
    const next = await backupOf(p);
    expect([next.cap, next.uploaded, next.created]).toEqual([first.cap, 0, 2]);
    expect((await check(p)).code).toBe(0);
  });

  itEmbedded('a root that is gone: forgotten; the next backup makes it again', async () => {
    const p = tree();
    const first = await backupOf(p);
    env.grid.damage(first.cap);
    const found = await check(p);
    expect(found.code).toBe(4);
    expect(found.stdout).toMatch(/^src: 1 lost directory is forgotten in the entry cache \(\d+ rows?\): the next backup uploads it again$/m);
    const next = await backupOf(p);
    expect([next.cap, next.uploaded, next.created]).toEqual([first.cap, 0, 1]);
    expect((await check(p)).code).toBe(0);
  });

  itEmbedded('storage servers stopped: what is out of reach is not forgotten', async () => {
    const p = tree();
    const first = await backupOf(p);
    const rows = rowCount(p);
    for (const s of [0, 1, 2]) env.grid.setServer(s, false);
    try {
      const found = await check(p);
      expect(found.code).toBe(4);
      expect(found.stdout).toMatch(/^src: 1 node could not be recovered while fewer storage servers answered than its shares need: it may be only out of reach, and is not forgotten in the entry cache$/m);
    } finally {
      for (const s of [0, 1, 2]) env.grid.setServer(s, true);
    }
    expect(rowCount(p)).toBe(rows);
    const next = await backupOf(p);
    expect([next.cap, next.uploaded, next.created]).toEqual([first.cap, 0, 0]);
  });

  itEmbedded('while a backup holds the cache: nothing forgotten (it may be reusing them), said in the line', async () => {
    const p = tree();
    const first = await backupOf(p);
    const rows = rowCount(p);
    env.grid.damage(await capAt(env.url, first.cap, ['other', 'w']));
    const release = await lockCache(p.cache);
    try {
      const found = await check(p);
      expect(found.code).toBe(4);
      expect(found.stdout).toMatch(/^src: the lost object is not forgotten in the entry cache: another lafs-backup is using it \(a backup may be reusing them right now\); check again when it is done$/m);
    } finally {
      await release();
    }
    expect(rowCount(p)).toBe(rows);
    expect((await check(p)).stdout).toMatch(/^src: 1 lost file and the 2 directories above it are forgotten/m);
  });

  it('a cap the grid never had, in the cache as a lost one is (a real gateway cannot lose shares on demand): the same, end to end', async () => {
    const p = tree();
    const first = await backupOf(p);
    const x = await capAt(env.url, first.cap, ['sub', 'x']);
    expect(plant(p.cache, x, neverStored('CHK', 3000), true)).toBe(1);
    const planted = await backupOf(p);
    expect(planted.cap).not.toBe(first.cap);
    const found = await check(p, '--json');
    expect(found.code).toBe(4);
    const reports = JSON.parse(found.stdout) as { generation: number; problems: { path: string }[]; forgotten: { lost: number; above: number; rows: number } | null }[];
    expect(reports.map((r) => r.generation)).toEqual([1, 2]);
    expect(reports[0]!.forgotten).toBeNull();
    const report = reports[1];
    expect(report!.problems.map((q) => q.path)).toEqual(['sub/x']);
    expect(report!.forgotten).toMatchObject({ lost: 1, above: 2 });
    const next = await backupOf(p);
    expect([next.cap, next.uploaded]).toEqual([first.cap, 1]);
    // The planted backup keeps its cap no grid has (a lost one comes back by the re-upload: the same cap).
    expect((await check(p, next.cap)).code).toBe(0);
  });
});

describe('check forgets nothing where it cannot know (24.5)', () => {
  let other: Grid;
  beforeAll(async () => {
    other = await startGrid();
  });
  afterAll(async () => {
    await other.stop();
  });

  it("through a gateway on another grid (a mistyped port): every backup is gone there, and the cache's entries stay", async () => {
    const p = tree();
    const first = await backupOf(p);
    const rows = rowCount(p);
    const file = join(p.dir, 'other.yaml');
    writeFileSync(file, `destination: {url: '${other.url}'}\n`);
    const r = await runCli([...configArgs(p), '-c', file, 'check']);
    expect(r.code).toBe(4);
    // The root is not there: the gateway says so before the stream (410), or in its first unit.
    expect(r.stdout).toMatch(/^src: (check failed: the backup is gone from the grid|\/ \(directory\): Not Healthy: 0 shares)/m);
    expect(r.stdout).toMatch(/^src: the lost object is not forgotten in the entry cache: the gateway is on another grid than the entry cache's entries are for$/m);
    expect(rowCount(p)).toBe(rows);
    const next = await backupOf(p);
    expect([next.cap, next.uploaded]).toEqual([first.cap, 0]);
  });
});
