/**
 * An entry cache that can only be read (issue 24, item 12): disaster recovery from an old disk
 * mounted read-only. The disk is a real read-only mount (a tmpfs remounted `ro`), so SQLite
 * meets EROFS where it would create the -shm. And an entry cache that cannot be opened for
 * want of file descriptors says so (issue 25, item 7).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { CLI, runCli, withoutSummary } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, outside a locked-down container). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = tempDir('lb-mount-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const MOUNT = canMount();
const itMount = MOUNT ? it : (name: string, ...rest: unknown[]) => it.skip(`${name} [skipped: needs root and permission to mount a tmpfs]`, ...(rest as []));

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
});

/** A project whose cache lives on its own tmpfs `disk`, backed up once (and closed cleanly). */
async function onDisk(): Promise<{ p: Project; disk: string; cap: string }> {
  const dir = tempDir();
  makeTree(join(dir, 'src'), { 'notes.txt': 'keep me', sub: { f: 'f'.repeat(300) } });
  const disk = join(dir, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', disk]);
  mounts.push(disk);
  const p = project(dir, join(dir, 'src'), env.url);
  const text = readFileSync(p.config, 'utf8').replace(p.cache, join(disk, 'cache.db'));
  p.cache = join(disk, 'cache.db');
  writeFileSync(p.config, text);
  const r = await backup(p);
  expect(r.code, r.stderr).toBe(0);
  return { p, disk, cap: r.cap };
}

const readOnly = (disk: string) => execFileSync('mount', ['-o', 'remount,ro', disk]);

/** Changes the cache as a run killed after its last commit leaves it: the change only in a -wal. */
function crashAfter(cache: string, sql: string): void {
  const script = `const D = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))}); const db = new D(${JSON.stringify(cache)});
    db.pragma('wal_autocheckpoint = 0'); db.exec(${JSON.stringify(sql)}); process.kill(process.pid, 'SIGKILL');`;
  spawnSync(process.execPath, ['-e', script]);
}

describe('a cache on a read-only disk', () => {
  itMount('list, ls NAME, restore NAME, diff NAME and check all work; nothing is written', async () => {
    const { p, disk } = await onDisk();
    expect(existsSync(`${p.cache}-wal`)).toBe(false);
    readOnly(disk);
    const list = await runCli([...configArgs(p), 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).backups.map((b: { name: string }) => b.name)).toEqual(['src']);
    const ls = await runCli([...configArgs(p), 'ls', 'src']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/ notes\.txt$/m);
    const dest = join(p.dir, 'restored');
    const restore = await runCli([...configArgs(p), 'restore', 'src', dest]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(readFileSync(join(dest, 'notes.txt'), 'utf8')).toBe('keep me');
    const diff = await runCli([...configArgs(p), 'diff', 'src', p.source]);
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout).toBe('');
    const check = await runCli([...configArgs(p), 'check']);
    expect(check.code, check.stderr).toBe(0);
    expect(withoutSummary(check.stderr).trim().split('\n')).toHaveLength(1);
    expect(check.stderr).toContain(`WARN entry cache ${p.cache} cannot be written: the backups are checked, but check times are not recorded (-a will not move on)`);
    // A command that writes says why it cannot, in one line.
    const b = await backup(p);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^lafs-backup: .*read-only file system \(EROFS\)\n$/);
  });

  itMount('what a crash left in the -wal is read: with its -shm, and without it', async () => {
    const { p, disk } = await onDisk();
    crashAfter(p.cache, "UPDATE backups SET name = 'after-the-crash'");
    expect(existsSync(`${p.cache}-wal`)).toBe(true);
    expect(existsSync(`${p.cache}-shm`)).toBe(true);
    readOnly(disk);
    const both = await runCli([...configArgs(p), 'list', '--json']);
    expect(both.code, both.stderr).toBe(0);
    expect(JSON.parse(both.stdout).backups.map((b: { name: string }) => b.name)).toEqual(['after-the-crash']);
    execFileSync('mount', ['-o', 'remount,rw', disk]);
    unlinkSync(`${p.cache}-shm`);
    readOnly(disk);
    const walOnly = await runCli([...configArgs(p), 'list', '--json']);
    expect(walOnly.code, walOnly.stderr).toBe(0);
    expect(JSON.parse(walOnly.stdout).backups.map((b: { name: string }) => b.name)).toEqual(['after-the-crash']);
  });

  itMount('an older schema on a read-only disk is read (upgraded in memory only)', async () => {
    const { p, disk } = await onDisk();
    const db = new Database(p.cache);
    db.exec("ALTER TABLE backups DROP COLUMN check_problem; DROP INDEX entries_xz_cap; DROP TABLE listings; ALTER TABLE backups DROP COLUMN summary; DROP INDEX entries_size; ALTER TABLE entries DROP COLUMN size; UPDATE meta SET value = '4' WHERE key = 'schema_version'");
    db.close();
    readOnly(disk);
    const r = await runCli([...configArgs(p), 'list', '-g', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.backups).toHaveLength(1);
    expect(j.generations[0].entries.length).toBeGreaterThan(0);
    execFileSync('mount', ['-o', 'remount,rw', disk]);
    const after = new Database(p.cache, { readonly: true });
    expect(after.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({ value: '4' });
    after.close();
  });
});

describe('too few file descriptors', () => {
  it('ulimit -n 20: one line naming the limit', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'f' });
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p)).code).toBe(0);
    for (const cmd of [['backup'], ['list']]) {
      const r = await new Promise<{ code: number | null; stderr: string }>((ok) => {
        const child = execFile('bash', ['-c', 'ulimit -n 20 && exec "$0" "$@"', process.execPath, CLI, ...configArgs(p), ...cmd], (err, _out, stderr) => ok({ code: err ? (err.code as number) : 0, stderr }));
        child.stdin?.end();
      });
      expect(r.code, cmd[0]).toBe(1);
      expect(r.stderr, cmd[0]).toBe(`lafs-backup: entry cache ${p.cache} cannot be opened: too many open files: the limit is 20 (raise it with ulimit -n)\n`);
    }
  });
});
