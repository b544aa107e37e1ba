/**
 * Interrupted backups lose nothing: after SIGKILL at several points, each rerun completes, the
 * final root cap equals an uninterrupted run's, and nothing cached before a kill is uploaded
 * again. SIGINT/SIGTERM stop cleanly with 130/143. Kill points are counted in uploads seen
 * by the grid, not in time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnCli } from '../support/cli.js';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { itEmbedded, uploadsDuring, useGrid } from '../support/grid.js';
import { makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();

function bigTree(root: string): void {
  const spec: Spec = {};
  for (let d = 0; d < 4; d++) {
    const dir: Spec = {};
    for (let f = 0; f < 10; f++) dir[`f${f}.bin`] = randomBytes(150 * 1024);
    spec[`d${d}`] = dir;
  }
  makeTree(root, spec);
}

const SLOW = `operation: {rate_limit: {bytes: '1/3e6'}}\nsource: {entry_cache: {commit_after: {queries: 3, seconds: 1}}}\n`;

/** Runs a backup and sends `signal` once the grid has seen `uploads` more uploads. */
async function interrupted(p: Project, uploads: number, signal: NodeJS.Signals, args: string[] = []): Promise<{ code: number | null; stderr: string; uploaded: string[] }> {
  const uploaded: string[] = [];
  const child = spawnCli([...configArgs(p), 'backup', ...args]);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const onUpload = (cap: string) => {
    uploaded.push(cap);
    if (uploaded.length === uploads) child.kill(signal);
  };
  env.grid.state.events.on('upload', onUpload);
  const code = await new Promise<number | null>((ok) => child.on('close', (c) => ok(c)));
  env.grid.state.events.off('upload', onUpload);
  return { code, stderr, uploaded };
}


const cachedFileCaps = (p: Project) =>
  !existsSync(p.cache) ? new Set<string>() : new Set(cacheRows(p.cache, 'SELECT cap FROM entries WHERE kind = 0').map((r) => r.cap as string));

describe('interrupted backups', () => {
  itEmbedded('SIGKILL at several points: each rerun completes what is left, never re-uploads what was cached, ends with the same root cap', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    mkdirSync(join(dir, 'clean'));
    const clean = await backup(project(join(dir, 'clean'), join(dir, 'src'), env.url));
    expect(clean.code).toBe(0);

    const p = project(dir, join(dir, 'src'), env.url, SLOW);
    let reuploaded = 0;
    for (const killAfter of [4, 9, 7]) {
      const before = cachedFileCaps(p);
      const run = await interrupted(p, killAfter, 'SIGKILL');
      expect(run.code).toBe(null);
      reuploaded += run.uploaded.filter((c) => before.has(c)).length;
    }
    const cached = cachedFileCaps(p);
    expect(cached.size).toBeGreaterThan(0);
    const { result: final, uploaded } = await uploadsDuring(env.grid, () => backup(p));
    expect(final.code).toBe(0);
    expect(final.cap).toBe(clean.cap);
    expect(uploaded.filter((c) => cached.has(c))).toEqual([]);
    expect(reuploaded).toBe(0);
    expect(cacheRows(p.cache, 'PRAGMA integrity_check')[0]!.integrity_check).toBe('ok');
  });

  itEmbedded('SIGINT stops cleanly with 130, the cache committed; the rerun uploads only the rest', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const p = project(dir, join(dir, 'src'), env.url, SLOW);
    const run = await interrupted(p, 8, 'SIGINT');
    expect(run.code).toBe(130);
    const lines = run.stderr.split('\n').filter(Boolean);
    expect(lines, run.stderr).toHaveLength(2);
    expect(lines[0]).toMatch(/WARN SIGINT: stopping; what is done is kept in the cache, rerun to finish/);
    expect(lines[1]).toBe('lafs-backup: interrupted by SIGINT; what was done is kept, rerun to finish');
    const cached = cachedFileCaps(p);
    // Uploads in flight when the signal came are abandoned (up to `concurrency`, 4): the grid
    // may have finished them, but their answers were never taken, so they are not cached.
    expect(cached.size).toBeGreaterThanOrEqual(8 - 4);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(0);
    const { result, uploaded } = await uploadsDuring(env.grid, () => backup(p));
    expect(result.code).toBe(0);
    expect(uploaded.filter((c) => cached.has(c))).toEqual([]);
    expect(uploaded.length).toBeLessThanOrEqual(40 - cached.size);
  });

  itEmbedded('the after hook still runs after SIGINT, told the backup was interrupted; it is not killed by that signal', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const told = join(dir, 'told.txt');
    const p = project(dir, join(dir, 'src'), env.url, `${SLOW}hooks: {after_backup: 'sleep 0.3; echo "$LAFS_BACKUP_OUTCOME $LAFS_BACKUP_EXIT_CODE" > ${told}'}\n`);
    const run = await interrupted(p, 4, 'SIGINT');
    expect(run.code, run.stderr).toBe(130);
    expect(readFileSync(told, 'utf8')).toBe('interrupted 130\n');
  });

  itEmbedded('SIGTERM gives 143; --try-resume continues the unfinished generation, a plain rerun starts a new one', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const p = project(dir, join(dir, 'src'), env.url, SLOW);
    expect((await interrupted(p, 3, 'SIGTERM')).code).toBe(143);
    expect((await interrupted(p, 3, 'SIGTERM', ['-r'])).code).toBe(143);
    expect(cacheRows(p.cache, 'SELECT max(generation) AS g FROM generations')[0]!.g).toBe(1);
    const resumed = await backup(p, ['--try-resume']);
    expect(resumed.code).toBe(0);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups')).toEqual([{ generation: 1 }]);
    await backup(p);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups ORDER BY id')).toEqual([{ generation: 1 }, { generation: 2 }]);
  });

  itEmbedded('a second backup on the same cache while one runs is refused in one line (exit 5)', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    // Slower than SLOW (6 MB at 1 MB/s): the first run must still hold the lock while the
    // second starts, however loaded the machine; its end is awaited from the start (it may end
    // before the second does).
    const p = project(dir, join(dir, 'src'), env.url, SLOW.replace('1/3e6', '1/1e6'));
    const first = spawnCli([...configArgs(p), 'backup']);
    const closed = new Promise((ok) => first.on('close', ok));
    await new Promise<void>((ok) => env.grid.state.events.once('upload', () => ok()));
    const second = await backup(p);
    first.kill('SIGINT');
    await closed;
    expect(second.code).toBe(5);
    expect(second.stderr).toMatch(/^lafs-backup: another lafs-backup is using the entry cache .*cache\.db \(process \d+ on .*\)/);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
  });
});
