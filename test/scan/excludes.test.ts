/**
 * Excludes people know (issue 26.7), beside the ordered regex filters: gitignore-like patterns
 * (exclude, --exclude, --exclude-file), exclude_if_present, exclude_caches (CACHEDIR.TAG with its
 * signature), one_file_system (-x); the queue's header records them; `diff BACKUP ./dir` reads
 * the local side through them (26.8).
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compileExclude, decidingExclude, excludeMatches } from '../../src/scan/excludes.js';
import { backup, configArgs, project, readBack } from '../support/backup.js';
import { CLI, runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { isRoot, makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const run = promisify(execFile);
const SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

const matches = (pattern: string, rel: string, isDir = false) => excludeMatches(compileExclude(pattern, 'test'), rel, isDir);

describe('exclude patterns, as .gitignore means them', () => {
  it('no slash: a name at any depth; a slash: anchored at the top; a trailing slash: directories only; ** any depth', () => {
    expect(matches('*.o', 'a.o')).toBe(true);
    expect(matches('*.o', 'x/y/a.o')).toBe(true);
    expect(matches('*.o', 'a.oo')).toBe(false);
    expect(matches('build', 'x/build', true)).toBe(true);
    expect(matches('/build', 'build', true)).toBe(true);
    expect(matches('/build', 'x/build', true)).toBe(false);
    expect(matches('x/build', 'x/build')).toBe(true);
    expect(matches('x/build', 'y/x/build')).toBe(false);
    expect(matches('logs/', 'logs', true)).toBe(true);
    expect(matches('logs/', 'logs', false)).toBe(false);
    expect(matches('**/cache', 'a/b/cache', true)).toBe(true);
    expect(matches('a/**/z', 'a/z')).toBe(true);
    expect(matches('a/**/z', 'a/b/c/z')).toBe(true);
    expect(matches('a/**/z', 'b/a/z')).toBe(false);
    expect(matches('*', 'a/b')).toBe(true);
    expect(matches('a/*', 'a/b/c')).toBe(false);
    expect(matches('?.txt', 'a.txt')).toBe(true);
    expect(matches('[a-c].txt', 'b.txt')).toBe(true);
    expect(matches('[!a-c].txt', 'b.txt')).toBe(false);
    expect(matches('\\*.txt', '*.txt')).toBe(true);
    expect(matches('\\*.txt', 'a.txt')).toBe(false);
    expect(matches('é*', 'éte')).toBe(true);
    // The last pattern that matches decides; ! takes a name back in.
    const list = ['*.o', '!keep.o'].map((p) => compileExclude(p, 'test'));
    expect(decidingExclude(list, 'x/keep.o', false)?.negate).toBe(true);
    expect(decidingExclude(list, 'x/drop.o', false)?.negate).toBe(false);
  });

  it('a pattern with many stars against a long name is decided in linear steps, not by backtracking', () => {
    // A backtracking regex (minimatch's) for this pattern takes time polynomial in the name's length.
    const e = compileExclude(`${'*a'.repeat(12)}*b`, 'test');
    const name = 'a'.repeat(250);
    const t = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) expect(excludeMatches(e, name, false)).toBe(false);
    // 100 × 25 × 250 steps at most; a backtracking matcher needs ~250^12.
    expect(Number(process.hrtime.bigint() - t) / 1e9).toBeLessThan(5);
  });

  it("refuses a pattern that means nothing, naming where it is", async () => {
    const dir = tempDir();
    const a = join(dir, 'a.yaml');
    writeFileSync(a, "exclude: ['ok', '/']\n");
    const r = await runCli(['-c', a, 'dump-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`lafs-backup: ${a}: exclude[1]: "/" is not a pattern (nothing to match)\n`);
    const list = join(dir, 'list.txt');
    writeFileSync(list, '# comment\n*.tmp\n\n../up\n');
    const f = await runCli(['dump-config', '--exclude-file', list]);
    expect(f.code).toBe(2);
    expect(f.stderr).toBe(`lafs-backup: ${list}:4: "../up": "." and ".." have no meaning in an exclude pattern\n`);
  });
});

describe('an exclude file written on Windows', () => {
  // Notepad starts a UTF-8 file with a byte-order mark: it was taken as part of the first
  // pattern, which then matched nothing (restic reads exclude files without it).
  it('a UTF-8 byte-order mark and CRLF line ends are not part of the patterns', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { 'a.log': 'a', 'b.tmp': 'b', 'keep.txt': 'k' });
    const list = join(dir, 'list.txt');
    writeFileSync(list, '\uFEFF*.log\r\n# a comment\r\n*.tmp\r\n');
    const r = await runCli(['--gateway', 'http://127.0.0.1:9', 'backup', '--dry-run', '--json', '--exclude-file', list, join(dir, 'src')], {
      env: { HOME: dir, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') },
    });
    expect(r.code, r.stderr).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o.skipped.excluded).toBe(2);
    expect(o.files.uploaded).toBe(1);
  });
});

describe('excludes end to end', () => {
  function tree(root: string): void {
    makeTree(root, {
      'keep.txt': 'k',
      'a.o': 'o',
      'important.o': 'taken back',
      sub: { 'b.o': 'o', 'keep.c': 'c', logs: 'a file named logs' },
      build: { x: 'x' },
      deep: { build: { y: 'y' } },
      logs: { l1: 'l' },
      'scratch.tmp': 't',
      nob: { '.nobackup': '', secret: 's' },
      cache: { 'CACHEDIR.TAG': `${SIGNATURE}\n# a cache\n`, blob: 'b' },
      fakecache: { 'CACHEDIR.TAG': 'not the signature\n', kept: 'k' },
      filtered: { f: 'f' },
    });
  }
  const EXPECTED = [
    'build',
    'cache',
    'deep',
    'deep/build',
    'deep/build/y',
    'fakecache',
    'fakecache/CACHEDIR.TAG',
    'fakecache/kept',
    'important.o',
    'keep.txt',
    'nob',
    'sub',
    'sub/keep.c',
    'sub/logs',
  ];

  it('each form leaves out what it says, alone and together with the filters; the queue header records them and a changed rule rebuilds the queue; diff of the local side agrees', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    tree(src);
    const list = join(dir, 'excludes.txt');
    writeFileSync(list, '# temporary files\n*.tmp\n');
    const made = Date.now();
    const p = project(dir, src, env.url, "filter: ['-^/filtered/$']\nexclude: ['*.o', '!important.o', 'build/', 'logs/']\nexclude_if_present: [.nobackup]\nexclude_caches: true\n");
    const r = await backup(p, ['--exclude-file', list, '--exclude', '/build/x']);
    expect(r.code, r.stderr).toBe(0);
    const back = await readBack(env.url, r.cap);
    // '/build/' keeps nothing of the top build/ (trailing slash: the directory), deep/build/ too:
    // gitignore's 'build/' has no slash before its end, so it matches at any depth.
    const paths = [...back.keys()].sort();
    expect(paths).toEqual(EXPECTED.filter((x) => !x.startsWith('deep/build') && x !== 'build'));
    expect(back.get('fakecache/kept')?.content?.toString()).toBe('k');
    // The header records which rules built the queue (the selection digest), and another rule rebuilds it.
    const header = readFileSync(p.queue, 'utf8').split('\n').find((l) => l.startsWith('# selection: '));
    expect(header).toMatch(/^# selection: sha256:[0-9a-f]{64}$/);
    // A queue is reused only when no directory changed in the 2 s before its walk.
    await new Promise((ok) => setTimeout(ok, Math.max(0, made + 2500 - Date.now())));
    const withList = ['--exclude-file', list];
    expect((await runCli([...configArgs(p), 'backup', '--queue-only', ...withList])).code).toBe(0);
    const again = await runCli([...configArgs(p), 'backup', ...withList, '--debug']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/reusing the queue file/);
    expect((await runCli([...configArgs(p), 'backup', '--queue-only', ...withList])).code).toBe(0);
    writeFileSync(list, '# temporary files\n*.tmp\nkeep.txt\n');
    const changed = await runCli([...configArgs(p), 'backup', ...withList, '--debug']);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toMatch(/the filters, excludes or files left out changed since the queue was built/);
    expect(readFileSync(p.queue, 'utf8')).not.toMatch(/^keep\.txt /m);
    // diff of the first backup and the local tree: what the configuration leaves out is not "added";
    // what only that backup's command line left out is.
    const d = await runCli([...configArgs(p), 'diff', r.cap, src]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe('+ scratch.tmp\n');
  }, 60_000);

  it("a source that is itself marked, or excluded whole, is refused rather than backed up empty", async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { '.nobackup': '', a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url, 'exclude_if_present: [.nobackup]\n');
    const r = await backup(p);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lafs-backup: exclude_if_present: nothing in .*src is left to back up \(it holds \.nobackup\)\n$/m);
    const all = await backup(project(dir, join(dir, 'src'), env.url, "exclude: ['*']\n"));
    expect(all.code).toBe(2);
    expect(all.stderr).toMatch(/exclude: nothing in .* is left to back up \(\d+ entries excluded; exclude\[0\] "\*" excluded/);
  });

  it.skipIf(!isRoot)('one_file_system (-x): a mount point is kept as an empty directory, nothing of the mount is read', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { a: 'a', mnt: {}, d: { b: 'b' } });
    const p = project(dir, src, env.url);
    // A private mount namespace: the tmpfs exists for this one command only.
    const inNs = (args: string[]) =>
      run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none "$1" && echo inside > "$1/f" && shift && exec "$@"', 'sh', join(src, 'mnt'), process.execPath, CLI, ...args], {
        env: { ...process.env, XDG_STATE_HOME: join(dir, 'state'), XDG_CONFIG_HOME: join(dir, 'config') },
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    const x = await inNs([...configArgs(p), 'backup', '-x']);
    expect((x as { stderr: string }).stderr).not.toMatch(/error/i);
    const cap = (x as { stdout: string }).stdout.trim();
    const back = await readBack(env.url, cap);
    expect([...back.keys()].sort()).toEqual(['a', 'd', 'd/b', 'mnt']);
    // Without -x the mount's contents are backed up, and the two queues have different selections.
    const all = await inNs([...configArgs(p), 'backup']);
    expect([...(await readBack(env.url, (all as { stdout: string }).stdout.trim())).keys()].sort()).toEqual(['a', 'd', 'd/b', 'mnt', 'mnt/f']);
  });
});
