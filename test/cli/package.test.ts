/**
 * The package a user installs: `npm pack` ships what runs and nothing of the packer's machine
 * (no native/build, no source maps pointing at an unshipped src/), it installs into a fresh
 * prefix and backs up; installed without its install scripts, it names the native module to
 * rebuild instead of "Could not locate the bindings file".
 *
 * Installs are offline, from npm's cache (filled by `npm ci` in set-up); the dependencies of the
 * good install are copied from this checkout, so only lafs-backup's own addon is compiled.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const env = useGrid();

describe('the packed package', () => {
  let tarball: string;
  let files: string[];
  beforeAll(async () => {
    const out = tempDir('lb-pack-');
    const { stdout } = await run('npm', ['pack', '--pack-destination', out, '--json'], { cwd: ROOT });
    const info = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(out, info[0].filename);
    files = info[0].files.map((f) => f.path);
  }, 120_000);

  it('ships what runs and nothing of the packer\'s machine', () => {
    for (const f of ['dist/bin/lafs-backup.js', 'dist/cli.js', 'config/default.yaml', 'native/xattr.c', 'native/at.c', 'native/addon.h', 'native/binding.gyp', 'native/build.js', 'package.json', 'README.md']) expect(files).toContain(f);
    expect(files.filter((f) => f.startsWith('native/build/'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  });

  /** A fresh prefix with this checkout's dependencies (copies: npm may rewrite the tree) and the tarball installed. */
  async function install(extra: string[], before?: (prefix: string) => void): Promise<string> {
    const prefix = tempDir('lb-prefix-');
    mkdirSync(join(prefix, 'node_modules'));
    for (const dep of readdirSync(join(ROOT, 'node_modules'))) {
      if (dep.startsWith('.')) continue;
      cpSync(join(ROOT, 'node_modules', dep), join(prefix, 'node_modules', dep), { recursive: true, verbatimSymlinks: true });
    }
    before?.(prefix);
    await run('npm', ['install', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '--omit=dev', ...extra, tarball], { cwd: prefix, timeout: 300_000 });
    return prefix;
  }

  it('installs into a fresh prefix and runs a backup', async () => {
    const prefix = await install([]);
    const bin = join(prefix, 'node_modules', '.bin', 'lafs-backup');
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(10_000), d: { b: 'b'.repeat(100) } });
    const p = project(dir, join(dir, 'src'), env.url);
    const r = await backup(p, [], { cli: bin });
    expect(r.code, r.stderr).toBe(0);
    expect(r.cap).toMatch(/^URI:DIR2-CHK:/);
    expect(r.stderr).not.toMatch(/extended attributes .* are not backed up/);
    // The installed addon's *at calls: a restore with the installed command.
    const back = await runCli([...configArgs(p), 'restore', r.cap, join(dir, 'restored')], { cli: bin });
    expect(back.code, back.stderr).toBe(0);
    expect(readFileSync(join(dir, 'restored', 'd', 'b'), 'utf8')).toBe('b'.repeat(100));
    // --version: the package's own, from a directory with no package.json above it.
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const cwd of [dir, '/']) {
      const v = await runCli(['--version'], { cli: bin, cwd });
      expect(v.code).toBe(0);
      expect(v.stdout).toBe(`${version}\n`);
    }
  }, 300_000);

  it('installed with --ignore-scripts: one line naming the module to rebuild', async () => {
    // As npm leaves it with --ignore-scripts: better-sqlite3 without its compiled part.
    const prefix = await install(['--ignore-scripts'], (p) => rmSync(join(p, 'node_modules', 'better-sqlite3', 'build'), { recursive: true, force: true }));
    const bin = join(prefix, 'node_modules', '.bin', 'lafs-backup');
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    // Our own addon is not built either: this run asks for no extended metadata, to get to the cache.
    const r = await backup(project(dir, join(dir, 'src'), env.url, 'source: {extended_metadata: false}\n'), [], { cli: bin });
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').pop()!;
    expect(last).toMatch(/^lafs-backup: the native module better-sqlite3 is not built for this Node\.js \(installed with --ignore-scripts\?\); run `npm rebuild better-sqlite3` where lafs-backup is installed$/);
    expect(r.stderr).not.toMatch(/Could not locate the bindings file/);
  }, 300_000);
});
