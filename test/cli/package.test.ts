/**
 * The package a user installs (issue 26.10): `npm pack` ships one bundle (no tsc output, no
 * maps), config/ with the schema, the addon's sources and a prebuilt addon for this platform
 * (node-gyp-build's layout), LICENSE and the licence notices of what the bundle contains; only
 * the native dependencies are dependencies. Installed into a fresh prefix with no compiler it
 * compiles nothing, and a backup keeps an ACL and an xattr; installed without its install
 * scripts, it names the native module to rebuild instead of "Could not locate the bindings file".
 *
 * Installs are offline: the dependencies a user would get (better-sqlite3, lzma-native and what
 * they need, nothing else) are copied from this checkout, so npm fetches and compiles nothing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project, readBack } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const env = useGrid();
const PREBUILT = `native/prebuilds/${process.platform}-${process.arch}/node.napi.glibc.node`;

/** The directories of the packages `npm install --omit=dev` would install (from this checkout's tree). */
function productionDependencies(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
  return out.split('\n').filter((l) => l && l !== ROOT).map((l) => relative(join(ROOT, 'node_modules'), l));
}

describe('the packed package', () => {
  let tarball: string;
  let files: string[];
  let unpacked: string;
  beforeAll(async () => {
    const out = tempDir('lb-pack-');
    // Built already (npm test builds first); prepack would build again.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', out, '--json'], { cwd: ROOT });
    const info = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(out, info[0].filename);
    files = info[0].files.map((f) => f.path);
    unpacked = join(out, 'x');
    mkdirSync(unpacked);
    await run('tar', ['-xzf', tarball, '-C', unpacked]);
  }, 120_000);

  it('ships one bundle, config/ with the schema, the addon (sources and a prebuilt one), LICENSE and the notices; only native modules are dependencies', () => {
    for (const f of ['dist/bin/lafs-backup.js', 'config/default.yaml', 'config/schema.json', 'native/addon.c', 'native/util.c', 'native/xattr.c', 'native/at.c', 'native/addon.h', 'native/binding.gyp', 'native/build.js', PREBUILT, 'LICENSE', 'THIRD-PARTY-NOTICES.txt', 'package.json', 'README.md']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('dist/'))).toEqual(['dist/bin/lafs-backup.js']);
    expect(files.filter((f) => f.startsWith('native/build/') || f.endsWith('.map') || f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(unpacked, 'package', 'package.json'), 'utf8')) as { dependencies: Record<string, string>; license: string };
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['better-sqlite3', 'lzma-native']);
    expect(pkg.license).toBe('GPL-3.0-or-later');
    expect(readFileSync(join(unpacked, 'package', 'LICENSE'), 'utf8')).toMatch(/^\s*GNU GENERAL PUBLIC LICENSE\s+Version 3, 29 June 2007/);
    // Every package whose code is in the bundle has its licence text in the notices.
    const notices = readFileSync(join(unpacked, 'package', 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    for (const name of ['yargs', 'yaml', 'pino', 'undici', 'minimatch', 'proper-lockfile', 'cli-progress', 'node-gyp-build']) {
      const version = (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
      expect(notices, name).toContain(`\n${name} ${version} — `);
    }
    expect(notices).toContain('Permission is hereby granted, free of charge');
  });

  /** A fresh prefix holding only what a user's install would, then the tarball installed into it. */
  async function install(extra: string[], envExtra: Record<string, string> = {}, before?: (prefix: string) => void): Promise<string> {
    const prefix = tempDir('lb-prefix-');
    mkdirSync(join(prefix, 'node_modules'));
    for (const dep of productionDependencies()) {
      cpSync(join(ROOT, 'node_modules', dep), join(prefix, 'node_modules', dep), { recursive: true, verbatimSymlinks: true });
    }
    before?.(prefix);
    await run('npm', ['install', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '--omit=dev', ...extra, tarball], {
      cwd: prefix,
      timeout: 300_000,
      env: { ...process.env, ...envExtra },
    });
    return prefix;
  }

  it('installs into a fresh prefix without compiling (the prebuilt addon), and a backup keeps an ACL and an xattr; restore and --version work', async () => {
    // No compiler: anything that tried to compile would fail.
    const prefix = await install([], { CC: '/bin/false', CXX: '/bin/false' });
    const installed = join(prefix, 'node_modules', 'lafs-backup');
    expect(existsSync(join(installed, 'native', 'build')), 'the install compiled the addon').toBe(false);
    // Nothing bundled is installed beside it.
    for (const name of ['yargs', 'yaml', 'pino', 'undici', 'minimatch', 'ajv']) expect(existsSync(join(prefix, 'node_modules', name)), name).toBe(false);
    rmSync(join(installed, 'native', 'build'), { recursive: true, force: true });
    const bin = join(prefix, 'node_modules', '.bin', 'lafs-backup');
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { a: 'a'.repeat(10_000), d: { b: 'b'.repeat(100) } });
    execFileSync('setfacl', ['-m', 'u:65534:r--', join(src, 'a')]);
    execFileSync('setfattr', ['-n', 'user.note', '-v', 'kept', join(src, 'd', 'b')]);
    const p = project(dir, src, env.url);
    const r = await backup(p, [], { cli: bin });
    expect(r.code, r.stderr).toBe(0);
    const back = await readBack(env.url, r.cap);
    expect(back.get('a')!.metadata.acls).toMatch(/(^|,)u:65534:r--(,|$)/);
    expect(Buffer.from((back.get('d/b')!.metadata.xattrs as Record<string, string>)['user.note']!, 'base64').toString()).toBe('kept');
    // The installed addon's *at calls: a restore with the installed command gives the xattr back.
    const restored = join(dir, 'restored');
    const res = await runCli([...configArgs(p), 'restore', r.cap, restored], { cli: bin });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(join(restored, 'd', 'b'), 'utf8')).toBe('b'.repeat(100));
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.note', join(restored, 'd', 'b')], { encoding: 'utf8' })).toBe('kept');
    // --version: the package's own, from a directory with no package.json above it.
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await runCli(['--version'], { cli: bin, cwd: '/' });
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`${version}\n`);
  }, 300_000);

  it('installed with --ignore-scripts: one line naming the module to rebuild', async () => {
    // As npm leaves it with --ignore-scripts: better-sqlite3 without its compiled part.
    const prefix = await install(['--ignore-scripts'], {}, (p) => rmSync(join(p, 'node_modules', 'better-sqlite3', 'build'), { recursive: true, force: true }));
    const bin = join(prefix, 'node_modules', '.bin', 'lafs-backup');
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    const r = await backup(project(dir, join(dir, 'src'), env.url, 'source: {extended_metadata: false}\n'), [], { cli: bin });
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').pop()!;
    expect(last).toMatch(/^lafs-backup: the native module better-sqlite3 is not built for this Node\.js \(installed with --ignore-scripts\?\); run `npm rebuild better-sqlite3` where lafs-backup is installed$/);
    expect(r.stderr).not.toMatch(/Could not locate the bindings file/);
  }, 300_000);
});
