/**
 * `backup --dry-run`: phase 1 and every cache decision, then what a backup would upload and
 * reuse — and nothing sent (the embedded grid counts no request), nothing written (no cache
 * row, no generation, no queue file, no result, no hook, no temporary file left).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { expectCli, expectRun } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

/** A digest of a file's bytes. */
function digest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** What a backup's JSON says it did (or would do). */
function work(j: Record<string, unknown>): unknown {
  const { files, stored, symlinks, directories, bytes, skipped } = j;
  return { files, stored, symlinks, directories, bytes, skipped };
}

const HOOKS = (dir: string) =>
  `hooks: {before_backup: ['/bin/sh', '-c', 'touch ${dir}/before-ran'], after_backup: 'touch ${dir}/after-ran'}\n` + `destination: {result: {append_to_file: '${dir}/results.txt'}}\n`;

function dryRun(p: Project, dir: string, extra: string[] = []) {
  return expectCli([...configArgs(p), 'backup', '--dry-run', '--json', ...extra], { stderr: '' }, { env: { TMPDIR: join(dir, 'tmp') } });
}

describe('backup --dry-run', () => {
  itEmbedded('sends no request and writes nothing, and says exactly what the backup then does', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'tmp'));
    const log = 'a log line that compresses well\n'.repeat(400);
    makeTree(join(dir, 'src'), { kept: 'unchanged', 'old.log': log, sub: { deep: 'deep', link: { symlink: '../kept' } } });
    const p = project(join(dir), join(dir, 'src'), env.url, HOOKS(dir));
    expectRun(await backup(p));
    // Tonight: a new file, a changed one, a copy of stored contents, a new directory.
    makeTree(join(dir, 'src'), { 'new.log': log.toUpperCase(), sub: { deep: 'deeper' }, 'copy.log': log, fresh: { f: 'f' } });
    const state = { cache: digest(p.cache), queue: digest(p.queue), results: readFileSync(join(dir, 'results.txt'), 'utf8') };
    const rows = cacheRows(p.cache, 'SELECT count(*) AS n, max(generation) AS g FROM entries');
    for (const hook of ['before-ran', 'after-ran']) rmSync(join(dir, hook));

    env.grid.resetStats();
    const r = await dryRun(p, dir);
    expect(env.grid.stats.requests).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ outcome: 'success', dry_run: true, cap: null, generation: null });
    expect(j.files).toEqual({ uploaded: 3, reused: 2, deduplicated: 1, not_cached: 0 });
    expect(j.directories).toEqual({ created: 3, reused: 0 });
    expect(j.symlinks).toEqual({ uploaded: 0, reused: 1 });

    // Nothing written: the cache and the queue as they were (SQLite may leave its -wal/-shm
    // index beside a cache it reads), no row, no generation, no result, no hook, no temporary file.
    expect(digest(p.cache)).toBe(state.cache);
    expect(digest(p.queue)).toBe(state.queue);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n, max(generation) AS g FROM entries')).toEqual(rows);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')).toEqual([{ n: 1 }]);
    expect(readFileSync(join(dir, 'results.txt'), 'utf8')).toBe(state.results);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('-ran'))).toEqual([]);

    // The backup itself then does what the dry run said.
    const real = expectRun(await backup(p, ['--json']));
    const done = JSON.parse(real.stdout) as Record<string, unknown>;
    expect(work(done)).toEqual(work(j));
    expect(env.grid.stats.put_uri).toBe(3);
    expect(env.grid.stats.mkdir_immutable).toBe(3);
    expect(readdirSync(dir).filter((f) => f.endsWith('-ran')).sort()).toEqual(['after-ran', 'before-ran']);
  });

  itEmbedded('with no entry cache yet: everything would be uploaded, and no cache or state directory is made', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'tmp'));
    makeTree(join(dir, 'src'), { a: 'a', b: 'a', c: { d: 'dd' } });
    const state = join(dir, 'state');
    const p = project(dir, join(dir, 'src'), env.url, `source: {queue: {path: '${state}/queue.txt'}, entry_cache: {path: '${state}/cache.db'}}\n`);
    env.grid.resetStats();
    const r = await expectCli([...configArgs(p), 'backup', '--dry-run'], { stdout: '' }, { env: { TMPDIR: join(dir, 'tmp') } });
    expect(r.stderr).toMatch(/^lafs-backup: dry run of backup "src" in [\d.]+ s, nothing sent or written: files 2 to upload \(3 B, 3 B to send\) \/ 0 reused \/ 1 found by contents; directories 2 to create \/ 0 reused\n$/);
    expect(env.grid.stats.requests).toBe(0);
    expect(existsSync(state)).toBe(false);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('--reuse-queue reads the queue given as it is; --queue-only is refused with it', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'tmp'));
    makeTree(join(dir, 'src'), { a: 'a', b: 'b' });
    const p = project(dir, join(dir, 'src'), env.url);
    expectRun(await backup(p, ['--queue-only']));
    const queue = digest(p.queue);
    const j = JSON.parse((await dryRun(p, dir, ['--reuse-queue'])).stdout) as { files: { uploaded: number }; queue: { rebuilt: boolean } };
    expect(j.files.uploaded).toBe(2);
    expect(j.queue.rebuilt).toBe(false);
    expect(digest(p.queue)).toBe(queue);
    await expectCli([...configArgs(p), 'backup', '--dry-run', '--queue-only'], { code: 2, stdout: '' });
  });
});
