/**
 * Failures the user or the machine causes never come out as "internal error", and the ones a
 * configuration makes certain are caught before anything is uploaded: each case asserts its
 * one line and its exit code.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { CLI, runCli, spawnCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();

function lastLine(stderr: string): string {
  return stderr.trim().split('\n').pop()!;
}

function small(dir: string): string {
  makeTree(join(dir, 'src'), { a: 'a'.repeat(100), d: { b: randomBytes(10_000) } });
  return join(dir, 'src');
}

describe('before anything is uploaded', () => {
  itEmbedded('a result file in a directory that does not exist: exit 2 naming the key and path, nothing sent', async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url, `destination: {result: {append_to_file: '${join(dir, 'nope', 'results.txt')}'}}\n`);
    env.grid.resetStats();
    const r = await backup(p);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^lafs-backup: destination\.result\.append_to_file: the directory of .*nope\/results\.txt cannot be written to: no such file or directory \(ENOENT\)$/);
    expect(env.grid.stats.put_uri).toBe(0);
    expect(existsSync(p.cache)).toBe(false);
  });

  itEmbedded('a log file in a directory that does not exist: exit 2 naming the key and path', async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url, `logging: {file: '${join(dir, 'nope', 'log.txt')}'}\n`);
    env.grid.resetStats();
    const r = await backup(p);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^lafs-backup: logging\.file: cannot open .*nope\/log\.txt: no such file or directory \(ENOENT\)$/);
    expect(env.grid.stats.put_uri).toBe(0);
  });

  it("the queue's and the cache's directories are created, mode 0700, whatever the umask", async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url, `source: {queue: {path: '${join(dir, 'state', 'q', 'queue.txt')}'}, entry_cache: {path: '${join(dir, 'state', 'c', 'cache.db')}'}}\n`);
    // The grid runs in this process: the CLI must run asynchronously.
    const r = await new Promise<{ code: number | null; stderr: string }>((ok) => {
      const child = spawn('sh', ['-c', 'umask 000 && exec "$0" "$@"', process.execPath, CLI, ...configArgs(p), 'backup'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => ok({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    for (const d of ['state', 'state/q', 'state/c']) expect((statSync(join(dir, d)).mode & 0o777).toString(8), d).toBe('700');
  });

  it('a YAML alias bomb is a configuration error (exit 2)', async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url);
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) lines.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    writeFileSync(join(dir, 'bomb.yaml'), `${lines.join('\n')}\n`);
    const r = await runCli([...configArgs(p), '-c', join(dir, 'bomb.yaml'), 'dump-config']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^lafs-backup: .*bomb\.yaml: invalid YAML: .*alias/i);
  });
});

describe('during a run', () => {
  itEmbedded('the queue file deleted during phase 2: the backup completes from the open file', async () => {
    const dir = tempDir();
    const spec: Spec = {};
    for (let i = 0; i < 30; i++) spec[`f${i}`] = randomBytes(50_000);
    makeTree(join(dir, 'src'), spec);
    const p = project(dir, join(dir, 'src'), env.url, "operation: {rate_limit: {bytes: '1/1e6'}}\n");
    const child = spawnCli([...configArgs(p), 'backup']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const start = env.grid.stats.put_uri;
    while (env.grid.stats.put_uri === start) await new Promise((ok) => setTimeout(ok, 20));
    rmSync(p.queue);
    const code = await new Promise<number | null>((ok) => child.on('close', ok));
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/internal error/);
    expect(stdout.trim()).toMatch(/^URI:DIR2-CHK:/);
  });

  it('a garbage lock-owner file does not break the lock', async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url);
    writeFileSync(`${p.cache}.lock-owner`, 'garbage{');
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a held lock with a garbage owner file: busy (exit 5), not an internal error', async () => {
    const dir = tempDir();
    const p = project(dir, small(dir), env.url);
    mkdirSync(`${p.cache}.lock`);
    writeFileSync(`${p.cache}.lock-owner`, 'garbage{');
    const r = await backup(p);
    expect(r.code).toBe(5);
    expect(lastLine(r.stderr)).toMatch(/^lafs-backup: another lafs-backup is using the entry cache /);
  });
});
