/** restore, ls and diff, end to end against the embedded grid. */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, copyFileSync, linkSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { runCli, spawnCli, withoutSummary } from '../support/cli.js';
import { startFlaky } from '../support/flaky.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { snapshot } from '../support/snapshot.js';
import { isRoot, makeTree, tempDir, writeRaw } from '../support/tree.js';

const env = useGrid();
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const old = new Date(Date.now() - 3600_000);

const tree = (root: string) => snapshot(root);

function richTree(root: string): void {
  makeTree(root, {
    'text.log': 'a line of text\n'.repeat(2000),
    'random.bin': randomBytes(200_000),
    empty: '',
    'spaces in name ': 'x',
    'ünïcödé': 'u',
    'new\nline': 'n',
    'empty dir': {},
    deep: { er: { est: { 'f.txt': 'deep' } } },
    acls: { 'named.txt': 'n' },
    links: { rel: { symlink: '../text.log' }, dangling: { symlink: 'nowhere' }, abs: { symlink: '/etc/hostname' } },
  });
  writeRaw(root, Buffer.from([0x62, 0xff, 0x2d]), 'invalid utf-8 name');
  sh('setfacl', '-m', 'u:1000:rwx,g:50:r-x', join(root, 'acls', 'named.txt'));
  sh('setfacl', '-d', '-m', 'u::rwx,g::r-x,o::---,u:1000:r-x', join(root, 'acls'));
  copyFileSync('/bin/true', join(root, 'ping'));
  sh('setcap', 'cap_net_raw+ep', join(root, 'ping'));
  sh('setfattr', '-n', 'user.note', '-v', 'kept', join(root, 'text.log'));
  sh('setfattr', '-n', 'user.dir', '-v', 'on a dir', join(root, 'deep'));
  chmodSync(join(root, 'random.bin'), 0o640);
  chmodSync(join(root, 'deep', 'er'), 0o750);
  if (isRoot) {
    chownSync(join(root, 'text.log'), 1000, 1000);
    chownSync(join(root, 'deep'), 1234, 50);
    execFileSync('chown', ['-h', '4321:4321', join(root, 'links', 'rel')]);
    sh('setcap', 'cap_net_raw+ep', join(root, 'ping')); // chown above does not touch ping
  }
  // Directories last (writing into them moved their mtimes), deepest first.
  for (const rel of ['ping', 'text.log', 'random.bin', 'acls/named.txt', 'deep/er/est/f.txt', 'deep/er/est', 'deep/er', 'deep', 'acls', 'links', 'empty dir']) utimesSync(join(root, rel), old, old);
}

/**
 * Backs up `n` random files of `size` bytes, starts restoring them through a gateway that
 * trickles its answers, and returns once a temporary file holds some but not all of its bytes.
 */
async function restoreUntilHalfway(n: number, size: number, extraYaml: string) {
  const dir = tempDir();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++) files[`big${i}.bin`] = randomBytes(size);
  makeTree(join(dir, 'src'), files);
  const q = project(dir, join(dir, 'src'), env.url, `destination: {encoding: {xz: {enabled: false}}}\n${extraYaml}`);
  const cap = (await backup(q)).cap;
  const slow = await startFlaky(env.url, () => 'slow');
  const dest = join(dir, 'dest');
  const viaSlow = join(dir, 'slow.yaml');
  writeFileSync(viaSlow, `destination: {url: '${slow.url}'}\n${extraYaml}`);
  const child = spawnCli(['-c', viaSlow, 'restore', cap, dest]);
  child.stdin!.end();
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((ok) => child.on('close', ok));
  for (;;) {
    await new Promise((ok) => setTimeout(ok, 20));
    const tmp = existsSync(dest) ? readdirSync(dest).filter((f) => f.startsWith('.lafs-restore-')) : [];
    if (tmp.some((f) => lstatSync(join(dest, f)).size > 100_000)) break;
  }
  return { files, dest, slow, child, closed, stderr: () => err };
}

describe('restore', () => {
  let p: Project;
  let cap: string;
  beforeAll(async () => {
    const dir = tempDir();
    richTree(join(dir, 'src'));
    p = project(dir, join(dir, 'src'), env.url);
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    cap = r.cap;
  });

  it('round trip: every entry comes back with its bytes, mode, owner, mtime, ACL, capabilities, xattrs, symlink target', async () => {
    const dest = join(tempDir(), 'restored');
    const r = await runCli([...configArgs(p), 'restore', cap, dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(withoutSummary(r.stderr)).toBe('');
    const want = tree(p.source);
    const got = tree(dest);
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, v] of want) {
      const name = Buffer.from(k.split('/').pop()!, 'hex').toString();
      const { mtimeNs: gotTime, ...gotRest } = got.get(k)!;
      const { mtimeNs: wantTime, ...wantRest } = v;
      expect(gotRest, name).toEqual(wantRest);
      const skew = (gotTime as bigint) - (wantTime as bigint);
      expect(skew < 1000n && skew > -1000n, `${name}: mtime off by ${skew} ns`).toBe(true);
    }
    // And as the system tools see them:
    expect(sh('getcap', join(dest, 'ping')).trim()).toBe(`${join(dest, 'ping')} cap_net_raw=ep`);
    expect(sh('getfacl', '-n', '-p', '--omit-header', join(dest, 'acls', 'named.txt'))).toBe(sh('getfacl', '-n', '-p', '--omit-header', join(p.source, 'acls', 'named.txt')).replaceAll(p.source, dest));
    expect(sh('getfattr', '-n', 'user.note', '--only-values', join(dest, 'text.log'))).toBe('kept');
    expect(Object.keys(got.get(`/${Buffer.from('acls').toString('hex')}`)!.xattrs as object)).toContain('system.posix_acl_default');
    expect(readdirSync(dest).filter((n) => n.startsWith('.lafs-restore-'))).toEqual([]);
  });

  it('restores by backup name, and a subdirectory alone with --path', async () => {
    const dest = join(tempDir(), 'part');
    const r = await runCli([...configArgs(p), 'restore', 'src', dest, '--path', 'deep/er']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dest)).toEqual(['er']);
    expect(readFileSync(join(dest, 'er', 'est', 'f.txt'), 'utf8')).toBe('deep');
    expect((lstatSync(join(dest, 'er')).mode & 0o777).toString(8)).toBe('750');
    const dry = await runCli([...configArgs(p), 'restore', cap, join(tempDir(), 'dry'), '--dry-run', '--path', 'deep']);
    expect(dry.stdout.trim().split('\n')).toEqual(['d deep/', 'd deep/er/', 'd deep/er/est/', '- deep/er/est/f.txt']);
  });

  it('refuses a non-empty DEST without --force, writing nothing', async () => {
    const dest = tempDir();
    writeFileSync(join(dest, 'precious'), 'mine');
    const r = await runCli([...configArgs(p), 'restore', cap, dest]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not empty; use --force to restore into it/);
    expect(readdirSync(dest)).toEqual(['precious']);
    const forced = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(dest, 'precious'), 'utf8')).toBe('mine');
  });

  it('with --force, a symlink where a directory belongs is replaced, never followed', async () => {
    const base = tempDir();
    const outside = join(base, 'outside');
    mkdirSync(outside);
    const dest = join(base, 'dest');
    mkdirSync(dest);
    symlinkSync(outside, join(dest, 'deep'));
    const r = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(dest, 'deep')).isDirectory()).toBe(true);
  });

  it('SIGKILL during a restore leaves no partially written file under its final name', async () => {
    const r = await restoreUntilHalfway(4, 3 * 1024 * 1024, '');
    r.child.kill('SIGKILL');
    await r.closed;
    await r.slow.close();
    for (const name of readdirSync(r.dest).filter((n) => !n.startsWith('.lafs-restore-'))) {
      expect(readFileSync(join(r.dest, name)).equals(r.files[name]!), name).toBe(true);
    }
    expect(readdirSync(r.dest).some((n) => n.startsWith('.lafs-restore-'))).toBe(true);
  }, 60_000);

  itEmbedded('hard links: the contents go up once, and restore makes them links of one another again', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: randomBytes(70_000), d: randomBytes(60_000), sub: {} });
    linkSync(join(dir, 'src', 'a'), join(dir, 'src', 'b'));
    linkSync(join(dir, 'src', 'a'), join(dir, 'src', 'sub', 'c'));
    const q = project(dir, join(dir, 'src'), env.url);
    env.grid.resetStats();
    const made = await backup(q);
    expect(made.code, made.stderr).toBe(0);
    // a (with b and sub/c) and d: two bodies.
    expect(env.grid.stats.put_uri).toBe(2);
    const dest = join(dir, 'dest');
    const r = await runCli([...configArgs(q), 'restore', made.cap, dest]);
    expect(r.code, r.stderr).toBe(0);
    const ino = (p: string) => statSync(join(dest, p)).ino;
    expect(ino('b')).toBe(ino('a'));
    expect(ino('sub/c')).toBe(ino('a'));
    expect(ino('d')).not.toBe(ino('a'));
    expect(statSync(join(dest, 'a')).nlink).toBe(3);
    expect(readFileSync(join(dest, 'sub', 'c')).equals(readFileSync(join(dir, 'src', 'a')))).toBe(true);
    // Unchanged, the next backup gives the same root cap.
    expect((await backup(q)).cap).toBe(made.cap);
  });

  it('a sparse file comes back with its holes, and mtimes to the nanosecond', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'src'));
    const sparse = join(dir, 'src', 'sparse.img');
    const head = randomBytes(100_000);
    const middle = randomBytes(50_000);
    writeFileSync(sparse, head);
    execFileSync('truncate', ['-s', '64M', sparse]);
    const fd = openSync(sparse, 'r+');
    writeSync(fd, middle, 0, middle.length, 40 * 1024 * 1024);
    closeSync(fd);
    execFileSync('touch', ['-d', '2020-02-02 20:20:20.123456789', sparse]);
    const q = project(dir, join(dir, 'src'), env.url);
    const made = await backup(q);
    expect(made.code, made.stderr).toBe(0);
    const dest = join(dir, 'dest');
    const r = await runCli([...configArgs(q), 'restore', made.cap, dest]);
    expect(r.code, r.stderr).toBe(0);
    const back = join(dest, 'sparse.img');
    const st = statSync(back, { bigint: true });
    expect(st.size).toBe(64n * 1024n * 1024n);
    expect(Number(st.blocks) * 512).toBeLessThan(1024 * 1024);
    expect(createHash('sha256').update(readFileSync(back)).digest('hex')).toBe(createHash('sha256').update(readFileSync(sparse)).digest('hex'));
    expect(st.mtimeNs).toBe(statSync(sparse, { bigint: true }).mtimeNs);
  }, 60_000);

  it('SIGINT during a restore: one line, exit 130, no temporary file left, what was finished is whole', async () => {
    const r = await restoreUntilHalfway(6, 2 * 1024 * 1024, 'operation: {concurrency: 2}\n');
    r.child.kill('SIGINT');
    const code = await r.closed;
    await r.slow.close();
    expect(code, r.stderr()).toBe(130);
    expect(r.stderr().trim().split('\n')).toEqual(['lafs-backup: interrupted by SIGINT; what was done is kept, rerun to finish']);
    expect(readdirSync(r.dest).filter((n) => n.startsWith('.lafs-restore-'))).toEqual([]);
    for (const name of readdirSync(r.dest)) expect(readFileSync(join(r.dest, name)).equals(r.files[name]!), name).toBe(true);
  }, 60_000);

  it('refuses a hostile directory (a child named ../x, a/b, or .) and writes nothing outside DEST', async () => {
    const c = new TahoeClient({ url: env.url });
    const file = await c.putFile(() => Buffer.from('x'.repeat(100)));
    for (const name of ['../x', 'a/b', '.', '..']) {
      const inner = await c.mkdirImmutable([{ name, type: 'filenode', cap: file, metadata: {} }]);
      const hostile = await c.mkdirImmutable([{ name: 'sub', type: 'dirnode', cap: inner, metadata: {} }]);
      const base = tempDir();
      const dest = join(base, 'dest');
      const r = await runCli(['-c', p.config, 'restore', hostile, dest]);
      expect(r.code, name).toBe(1);
      expect(r.stderr).toBe(`lafs-backup: the backup directory "/sub" has a child named ${JSON.stringify(name)}: refusing it (a hostile or corrupted directory)\n`);
      expect(readdirSync(base)).toEqual(['dest']);
      expect(readdirSync(join(dest, 'sub'))).toEqual([]);
    }
    await c.close();
  });

  it("restores trees made by tahoe backup (st_mode, st_uid, float mtime, no enc)", async () => {
    const c = new TahoeClient({ url: env.url });
    const data = await c.putFile(() => Buffer.from('made by tahoe backup\n'.repeat(10)));
    const mtime = 1_700_000_000.25;
    const sub = await c.mkdirImmutable([{ name: 'file.txt', type: 'filenode', cap: data, metadata: { ctime: mtime, mtime, st_mode: 0o100640, st_ino: 12, st_dev: 5, st_uid: 1000, st_gid: 1000 } }]);
    const root = await c.mkdirImmutable([{ name: 'Documents', type: 'dirnode', cap: sub, metadata: { ctime: mtime, mtime, st_mode: 0o40750 } }]);
    await c.close();
    const dest = join(tempDir(), 'tb');
    const r = await runCli(['-c', p.config, 'restore', root, dest, '--no-owner']);
    expect(r.code, r.stderr).toBe(0);
    const f = join(dest, 'Documents', 'file.txt');
    expect(readFileSync(f, 'utf8')).toBe('made by tahoe backup\n'.repeat(10));
    expect((lstatSync(f).mode & 0o7777).toString(8)).toBe('640');
    expect((lstatSync(join(dest, 'Documents')).mode & 0o7777).toString(8)).toBe('750');
    expect(lstatSync(f).mtimeMs).toBe(mtime * 1000);
  });

  it('ls lists with metadata, -R goes down, --json has the fields', async () => {
    const r = await runCli([...configArgs(p), 'ls', cap]);
    expect(r.code).toBe(0);
    // Sizes as on disk; -l adds the size as stored and the encoding. Random bytes are stored
    // raw (xz would not shrink them); text is compressed.
    expect(r.stdout).toMatch(/^-rw-r----- \S+ +200000 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d random\.bin$/m);
    expect(r.stdout).toMatch(/^-rw-r--r-- \S+ +\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d text\.log$/m);
    const long = await runCli([...configArgs(p), 'ls', '-l', cap]);
    expect(long.stdout).toMatch(/^-rw-r----- \S+ +200000 +200000 {4}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d random\.bin$/m);
    expect(long.stdout).toMatch(/^-rw-r--r-- \S+ +\d+ +\d+ xz \d{4}-\d\d-\d\d \d\d:\d\d:\d\d text\.log$/m);
    expect(r.stdout).toMatch(/^-rw-r--r-- .* new\\nline$/m);
    expect(r.stdout).toMatch(/^drwxr-xr-x .* links\/$/m);
    expect(r.stdout).not.toMatch(/deep\/er/);
    const rec = await runCli([...configArgs(p), 'ls', '-R', cap, 'links']);
    expect(rec.stdout).toMatch(/^lrwxrwxrwx \S+ +\d+ .{19} links\/rel -> \.\.\/text\.log$/m);
    const json = JSON.parse((await runCli([...configArgs(p), 'ls', '--json', '-R', cap])).stdout);
    const log = json.find((e: { path: string }) => e.path === 'text.log');
    expect(log).toMatchObject({ type: 'file', mode: '644', enc: 'xz', uid: isRoot ? 1000 : log.uid });
    expect(json.find((e: { path: string }) => e.path === 'deep/er/est/f.txt')).toMatchObject({ type: 'file', enc: null, size: 4 });
    expect(json.find((e: { path: string }) => e.path === 'links/abs')).toMatchObject({ type: 'symlink', target: '/etc/hostname' });
  });
});

describe('diff', () => {
  it('between two backups reports exactly the changes made between them; a restore equals its backup', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { keep: 'k', edit: 'e1', gone: 'g', mode: 'm', sub: { inner: 'i' }, meta: 'x' });
    const p = project(dir, join(dir, 'src'), env.url);
    const a = (await backup(p)).cap;
    writeFileSync(join(dir, 'src', 'edit'), 'e2, longer');
    utimesSync(join(dir, 'src', 'edit'), old, old);
    rmSync(join(dir, 'src', 'gone'));
    chmodSync(join(dir, 'src', 'mode'), 0o600);
    makeTree(join(dir, 'src'), { added: 'new', newdir: { f: 'f' } });
    sh('setfattr', '-n', 'user.tag', '-v', 'v', join(dir, 'src', 'meta'));
    const b = (await backup(p)).cap;
    const r = await runCli([...configArgs(p), 'diff', a, b, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      added: ['added', 'newdir/'],
      removed: ['gone'],
      changed: [
        { path: 'edit', what: ['mtime', 'contents'] },
        { path: 'meta', what: ['xattrs'] },
        { path: 'mode', what: ['mode'] },
      ],
    });
    const text = await runCli([...configArgs(p), 'diff', a, b]);
    expect(text.stdout.trim().split('\n')).toEqual(['+ added', 'M edit (mtime, contents)', '- gone', 'M meta (xattrs)', 'M mode (mode)', '+ newdir/']);
    const dest = join(tempDir(), 'r');
    expect((await runCli([...configArgs(p), 'restore', b, dest])).code).toBe(0);
    const same = await runCli([...configArgs(p), 'diff', b, dest, '--json']);
    expect(JSON.parse(same.stdout)).toEqual({ added: [], removed: [], changed: [] });
    writeFileSync(join(dest, 'keep'), 'K');
    utimesSync(join(dest, 'keep'), old, old);
    const local = await runCli([...configArgs(p), 'diff', b, dest, '--json']);
    expect(JSON.parse(local.stdout).changed).toEqual([{ path: 'keep', what: ['mtime', 'contents'] }]);
  });
});

describe('diff arguments', () => {
  it('a backup name is a backup even where a subdirectory of that name exists; a local directory is given as a path', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), d: { b: 'b'.repeat(100) } });
    const p = project(dir, join(dir, 'src'), env.url);
    const made = await backup(p);
    expect(made.code).toBe(0);
    expect((await runCli([...configArgs(p), 'restore', 'src', join(dir, 'restored')])).code).toBe(0);
    writeFileSync(join(dir, 'src', 'new-since'), 'n');
    // Run from `dir`, which has a subdirectory named "src": "src" is the backup, ./restored the directory.
    const same = await runCli([...configArgs(p), 'diff', 'src', './restored'], { cwd: dir });
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toBe('');
    const local = await runCli([...configArgs(p), 'diff', 'src', './src'], { cwd: dir });
    expect(local.stdout.trim()).toBe('+ new-since');
    const missing = await runCli([...configArgs(p), 'diff', 'src', './nowhere'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^lafs-backup: diff: "\.\/nowhere" is not a directory/);
  });
});
