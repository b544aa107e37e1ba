/**
 * The run's surroundings: two runs at once, the lock on every exit path, secrets at the
 * noisiest log level, file modes whatever the umask, and a full disk.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, spawnCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { isRoot, makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();

function bigTree(root: string): void {
  const spec: Spec = {};
  for (let i = 0; i < 40; i++) spec[`f${i}.bin`] = randomBytes(100_000);
  makeTree(root, spec);
}
const SLOW = "operation: {rate_limit: {bytes: '1/2e6'}}\n";

describe('the entry cache lock, on every exit path', () => {
  itEmbedded('is released after success, failure, SIGINT and SIGTERM, and taken over after SIGKILL', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const p = project(dir, join(dir, 'src'), env.url, SLOW);
    const stopAfterUpload = async (signal: NodeJS.Signals) => {
      const child = spawnCli([...configArgs(p), 'backup']);
      child.stdout!.resume();
      child.stderr!.resume();
      await new Promise<void>((ok) => env.grid.state.events.once('upload', () => ok()));
      child.kill(signal);
      return new Promise<number | null>((ok) => child.on('close', ok));
    };
    expect(await stopAfterUpload('SIGINT')).toBe(130);
    expect(existsSync(`${p.cache}.lock`)).toBe(false);
    expect(await stopAfterUpload('SIGTERM')).toBe(143);
    expect(existsSync(`${p.cache}.lock`)).toBe(false);
    expect(await stopAfterUpload('SIGKILL')).toBe(null);
    expect(existsSync(`${p.cache}.lock`)).toBe(true);
    // A failure (the gateway refuses everything) still releases the lock.
    writeFileSync(join(dir, 'down.yaml'), "destination: {url: 'http://127.0.0.1:9/uri'}\nhttp: {retry: {attempts: 0}}\n");
    const failed = await runCli([...configArgs(p), '-c', join(dir, 'down.yaml'), 'backup']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/removing a stale lock of the entry cache left by process \d+, which is gone/);
    expect(existsSync(`${p.cache}.lock`)).toBe(false);
    const ok = await backup(p);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(`${p.cache}.lock`)).toBe(false);
  });
});

describe('secrets', () => {
  let p: Project;
  let mutable: string;
  it('no command writes a cap to stderr, even at --noise (runCli audits every run)', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(10_000), b: { c: 'c'.repeat(100) } });
    const c = new TahoeClient({ url: env.url });
    mutable = await c.mkdirMutable();
    await c.close();
    p = project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${join(dir, 'results.txt')}', append_to_lafs_dir: '${mutable}'}}\nhttp: {debug_requests: true}\n`);
    const cap = (await backup(p, ['--noise'])).cap;
    writeFileSync(join(p.source, 'd'), 'new');
    const cap2 = (await backup(p, ['--noise'])).cap;
    const dest = join(dir, 'restored');
    const runs = [
      ['list', '--noise', '-g', '1'],
      ['check', '--noise', '--repair', '--healthy-format', '{backup[name]} {0[path]}'],
      ['cleanup', '--noise', '--dry-run', '-e', '-', cap],
      ['restore', '--noise', cap, dest],
      ['ls', '--noise', '-R', cap],
      ['diff', '--noise', cap, cap2],
      ['diff', '--noise', cap2, dest],
      ['dump-config', '--noise'],
    ];
    for (const args of runs) {
      const r = await runCli([...configArgs(p), ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBeLessThan(2);
      if (args[0] === 'restore' || args[0] === 'check') expect(r.stderr.length, args[0]).toBeGreaterThan(0); // noise level logs
    }
  });

  it('dump-config shows caps redacted unless --reveal-caps', async () => {
    const shown = await runCli([...configArgs(p), 'dump-config']);
    expect(shown.stdout).not.toContain(mutable);
    expect(shown.stdout).toMatch(/append_to_lafs_dir: cap#[0-9a-f]{10}/);
    expect((await runCli([...configArgs(p), 'dump-config', '--reveal-caps'])).stdout).toContain(mutable);
  });
});

describe('file modes', () => {
  itEmbedded('files holding caps (cache with its WAL, result file, queue, log) are 0600 whatever the umask', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const results = join(dir, 'results.txt');
    const logFile = join(dir, 'backup.log');
    const p = project(dir, join(dir, 'src'), env.url, `${SLOW}destination: {result: {append_to_file: '${results}'}}\nlogging: {file: '${logFile}', level: debug}\n`);
    const old = process.umask(0);
    try {
      // Killed mid-run, the WAL and shared-memory files are still there to inspect.
      const child = spawnCli([...configArgs(p), 'backup']);
      child.stdout!.resume();
      await new Promise<void>((ok) => env.grid.state.events.once('upload', () => setTimeout(ok, 200)));
      const wal = readdirSync(dir).filter((n) => /^cache\.db-(wal|shm)$/.test(n));
      expect(wal.sort()).toEqual(['cache.db-shm', 'cache.db-wal']);
      for (const n of wal) expect((statSync(join(dir, n)).mode & 0o777).toString(8), n).toBe('600');
      child.kill('SIGKILL');
      await new Promise((ok) => child.on('close', ok));
      const r = await backup(p);
      expect(r.code).toBe(0);
    } finally {
      process.umask(old);
    }
    for (const f of [p.cache, results, p.queue, logFile]) expect((statSync(f).mode & 0o777).toString(8), f).toBe('600');
    expect(readFileSync(logFile, 'utf8')).toMatch(/DEBUG queue built/);
  });
});

describe.runIf(isRoot)('a full disk (a small tmpfs)', () => {
  const mnt = tempDir('lb-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=192k', 'tmpfs', mnt]);
  afterAll(() => {
    execFileSync('umount', [mnt]);
  });

  it('the queue does not fit: one line naming it, the old queue intact, no temporary left', async () => {
    const dir = tempDir();
    const files: Spec = {};
    for (let i = 0; i < 4000; i++) files[`a-rather-long-file-name-to-fill-the-queue-${i}`] = '';
    makeTree(join(dir, 'src'), files);
    const p = project(dir, join(dir, 'src'), env.url);
    writeFileSync(join(dir, 'q.yaml'), `source: {queue: {path: '${join(mnt, 'queue.txt')}'}}\n`);
    writeFileSync(join(mnt, 'queue.txt'), '# lafs-backup queue v1\n# an older queue\n');
    const r = await runCli([...configArgs(p), '-c', join(dir, 'q.yaml'), 'backup', '--queue-only']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^lafs-backup: cannot write queue file .*queue\.txt: no space left on device \(ENOSPC\)$/);
    expect(readFileSync(join(mnt, 'queue.txt'), 'utf8')).toBe('# lafs-backup queue v1\n# an older queue\n');
    expect(readdirSync(mnt)).toEqual(['queue.txt']);
  });

  it('the cache does not fit: one line naming it, what was committed stays readable', async () => {
    const dir = tempDir();
    bigTree(join(dir, 'src'));
    const files: Spec = {};
    for (let i = 0; i < 3000; i++) files[`n${i}`] = `unique content ${i} `.repeat(4);
    makeTree(join(dir, 'src', 'many'), files);
    const p = project(dir, join(dir, 'src'), env.url);
    mkdirSync(join(mnt, 'c2'));
    writeFileSync(join(dir, 'c.yaml'), `source: {entry_cache: {path: '${join(mnt, 'c2', 'cache.db')}'}}\n`);
    const r = await runCli([...configArgs(p), '-c', join(dir, 'c.yaml'), 'backup']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^lafs-backup: entry cache .*cache\.db: no space left on device$/);
    // The cache's failure is the cache's: no source file is blamed, and no backup is recorded.
    expect(r.stderr).not.toMatch(/cannot read|skipped|internal error/);
    expect(cacheRows(join(mnt, 'c2', 'cache.db'), 'PRAGMA integrity_check')[0]!.integrity_check).toBe('ok');
    expect(cacheRows(join(mnt, 'c2', 'cache.db'), 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(0);
  });
});
