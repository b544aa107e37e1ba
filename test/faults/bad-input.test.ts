/**
 * Bad input: each case gets one line naming the culprit and a documented exit code — never a
 * stack trace, never a partial write (no result file, no backups row, the old queue intact).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION } from '../../src/cache/schema.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { EXTERNAL, useGrid } from '../support/grid.js';
import { isRoot, makeTree, tempDir, unprivileged } from '../support/tree.js';

const env = useGrid();

function oneLine(r: { stderr: string }, re: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(re);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('bad configuration', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed YAML', 'source: [unclosed\n', /^lafs-backup: .*bad\.yaml:\d+:\d+: invalid YAML: /],
    ['unknown key', 'sourc: {path: x}\n', /^lafs-backup: .*bad\.yaml: unknown key 'sourc'$/],
    ['wrong type', 'operation: {concurrency: many}\n', /^lafs-backup: .*bad\.yaml: operation\.concurrency: expected a whole number from 1 to 256, got "many"$/],
    ['bad regex', "filter: ['-(?<oops']\n", /^lafs-backup: .*bad\.yaml: filter\[0\]: rule "-\(\?<oops" is not a valid regular expression: /],
    ['bad rate', "operation: {rate_limit: {bytes: 'fast'}}\n", /^lafs-backup: .*bad\.yaml: operation\.rate_limit\.bytes: "fast" is not a number or a rate like 1\/10$/],
    ['bad cap in config', "destination: {result: {append_to_lafs_dir: 'URI:DIR2:nope'}}\n", /^lafs-backup: .*bad\.yaml: destination\.result\.append_to_lafs_dir: not a valid Tahoe-LAFS cap: cap#[0-9a-f]{10}$/],
    ['a rate dividing by zero', "operation: {rate_limit: {bytes: '1/0'}}\n", /^lafs-backup: .*bad\.yaml: operation\.rate_limit\.bytes: "1\/0" divides by zero$/],
    ['a rate with two bursts', "operation: {rate_limit: {objects: '1/10:50:3'}}\n", /^lafs-backup: .*bad\.yaml: operation\.rate_limit\.objects: "1\/10:50:3" has more than one ':'/],
    ['a hex rate', "operation: {rate_limit: {objects: '0x10'}}\n", /^lafs-backup: .*bad\.yaml: operation\.rate_limit\.objects: "0x10" is not a number or a rate like 1\/10$/],
    ['a gateway port out of range', "destination: {url: 'http://127.0.0.1:99999/uri'}\n", /^lafs-backup: .*bad\.yaml: destination\.url: "http:\/\/127\.0\.0\.1:99999\/uri" is not a valid URL \(is the port from 1 to 65535\?\)$/],
    ['a bad path_filter regex', "destination: {encoding: {xz: {path_filter: [[100, '(']]}}}\n", /^lafs-backup: .*bad\.yaml: destination\.encoding\.xz\.path_filter\[0\]: /],
  ];
  it.each(cases)('%s: exit 2, one line naming the culprit, nothing written', async (_name, yaml, re) => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    const p = project(dir, join(dir, 'src'), env.url);
    writeFileSync(join(dir, 'bad.yaml'), yaml);
    const results = join(dir, 'results.txt');
    writeFileSync(join(dir, 'results.yaml'), `destination: {result: {append_to_file: '${results}'}}\n`);
    const r = await runCli(['-c', p.config, '-c', join(dir, 'results.yaml'), '-c', join(dir, 'bad.yaml'), 'backup']);
    expect(r.code, r.stderr).toBe(2);
    oneLine(r, re);
    expect(existsSync(results)).toBe(false);
    expect(existsSync(p.queue)).toBe(false);
  });
});

describe('dump-config rejects what backup would reject', () => {
  const cases: [string, string][] = [
    ['a bad regex', "filter: ['-(?<oops']\n"],
    ['a bad rate', "operation: {rate_limit: {bytes: '1/0'}}\n"],
    ['a bad port', "destination: {url: 'http://127.0.0.1:99999/uri'}\n"],
    ['a bad lafs dir cap', "destination: {result: {append_to_lafs_dir: 'URI:DIR2:nope'}}\n"],
  ];
  it.each(cases)('%s: the same line from both, exit 2', async (_name, yaml) => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url);
    writeFileSync(join(dir, 'bad.yaml'), yaml);
    const dump = await runCli(['-c', p.config, '-c', join(dir, 'bad.yaml'), 'dump-config']);
    const back = await runCli(['-c', p.config, '-c', join(dir, 'bad.yaml'), 'backup']);
    expect(dump.code).toBe(2);
    expect(back.code).toBe(2);
    expect(dump.stderr).toBe(back.stderr);
    expect(dump.stdout).toBe('');
  });

  it('-c /dev/zero and a configuration over 1 MiB: one line, exit 2', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(1 << 20)}\n`);
    for (const f of ['/dev/zero', join(dir, 'big.yaml')]) {
      const r = await runCli(['-c', f, 'dump-config']);
      expect(r.code).toBe(2);
      oneLine(r, /a configuration file must be at most 1048576 bytes$/);
    }
  });

  it('~/ at the start of a path means the home directory', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'home.yaml'), "source: {queue: {path: '~/q.txt'}}\n");
    const r = await runCli(['-c', join(dir, 'home.yaml'), 'dump-config'], { env: { HOME: '/home/someone' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/path: \/home\/someone\/q\.txt/);
  });

  it('a gateway URL with a password: dump-config does not print it', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'pw.yaml'), "destination: {url: 'http://alice:s3cret@127.0.0.1:3456/uri'}\n");
    const r = await runCli(['-c', join(dir, 'pw.yaml'), 'dump-config']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('s3cret');
    expect(r.stdout).toContain('http://***@127.0.0.1:3456/uri');
  });
});

describe('surprises a user would not expect', () => {
  it('a filter set that excludes everything: exit 2 naming the rule, no backup recorded', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a', sub: { b: 'b' } });
    const p = project(dir, join(dir, 'src'), env.url, "filter: ['+/keep$', '-.']\n");
    const r = await backup(p);
    expect(r.code).toBe(2);
    oneLine(r, /^lafs-backup: filter: nothing in .*src is left to back up \(2 entries excluded; filter\[1\] "-\." excluded "\/a"\)$/);
    expect(existsSync(p.cache) ? cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n : 0).toBe(0);
  });

  it('an empty source directory is a (small) backup, not an error', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'src'));
    const r = await backup(project(dir, join(dir, 'src'), env.url));
    expect(r.code, r.stderr).toBe(0);
  });

  it('a glob whose last match is a file picks the last matching directory', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'snaps'), { 'daily.1': { a: 'one' }, 'daily.2': { a: 'two' }, 'daily.9.log': 'not a snapshot' });
    const p = project(dir, join(dir, 'snaps', 'daily.*'), env.url);
    const r = await backup(p, ['--queue-only']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(p.queue, 'utf8')).toMatch(/^# source: .*daily\.2$/m);
  });

  it('--queue-only PATH refuses to overwrite a file that is not a queue file', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url);
    const precious = join(dir, 'precious.txt');
    writeFileSync(precious, 'do not overwrite me\n');
    const r = await backup(p, ['--queue-only', precious]);
    expect(r.code).toBe(2);
    oneLine(r, /^lafs-backup: source\.queue\.path: .*precious\.txt exists and is not a lafs-backup queue file; refusing to overwrite it$/);
    expect(readFileSync(precious, 'utf8')).toBe('do not overwrite me\n');
    // A queue file is overwritten as before.
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
  });

  it('check with nothing to check says so', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url);
    await backup(p, ['--queue-only']);
    // An entry cache with no finished backup.
    const { EntryCache } = await import('../../src/cache/db.js');
    EntryCache.open(p.cache).close();
    const r = await runCli([...configArgs(p), 'check']);
    expect(r.code).toBe(0);
    oneLine(r, /^lafs-backup: check: no finished backups in the entry cache .*cache\.db; nothing to check$/);
  });

  it('generation numbers are never reused, even after cleanup -g of the newest', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p)).code).toBe(0);
    writeFileSync(join(dir, 'src', 'b'), 'b'.repeat(100));
    expect((await backup(p)).code).toBe(0);
    expect((await runCli([...configArgs(p), 'cleanup', '-g', '2'])).code).toBe(0);
    writeFileSync(join(dir, 'src', 'c'), 'c'.repeat(100));
    expect((await backup(p)).code).toBe(0);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups ORDER BY id').map((r) => r.generation)).toEqual([1, 3]);
  });
});

describe('queue paths stay beneath the source', () => {
  let p: Project;
  let good: string;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), sub: { b: 'b'.repeat(100) } });
    makeTree(join(dir, 'outside'), { secret: 'not yours' });
    p = project(dir, join(dir, 'src'), env.url);
    await backup(p, ['--queue-only']);
    good = readFileSync(p.queue, 'utf8');
  });
  const edits: [string, string, RegExp][] = [
    ['a .. component', '../outside/secret 0:0:100644', /queue\.txt:\d+: the path "\.\.\/outside\/secret" has an empty, "\." or "\.\." component/],
    ['.. inside a path', 'sub/../../outside/secret 0:0:100644', /queue\.txt:\d+: the path "sub\/\.\.\/\.\.\/outside\/secret" has an empty/],
    ['a . component', 'sub/./b2 0:0:100644', /has an empty, "\." or "\.\." component/],
    ['an empty component', 'sub//b2 0:0:100644', /has an empty, "\." or "\.\." component/],
    ['an absolute path', '/etc/passwd 0:0:100644', /queue\.txt:\d+: the path "\/etc\/passwd" is absolute/],
    ['a NUL', 'sub/b\\x002 0:0:100644', /queue\.txt:\d+: the path contains a NUL byte/],
  ];
  it.each(edits)('%s: refused naming file:line (exit 2), nothing uploaded', async (_name, line, re) => {
    // The hostile line goes first: a check made only while uploading would have sent others already.
    const lines = good.split('\n');
    lines.splice(lines.findIndex((l) => !l.startsWith('#')), 0, line);
    writeFileSync(p.queue, lines.join('\n'));
    if (!EXTERNAL) env.grid.resetStats();
    const r = await backup(p, ['--reuse-queue']);
    expect(r.code, r.stderr).toBe(2);
    oneLine(r, re);
    if (!EXTERNAL) expect(env.grid.stats.put_uri).toBe(0);
  });
});

describe('bad queue files (--reuse-queue)', () => {
  let p: Project;
  let good: string;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), sub: { b: 'b'.repeat(100), c: 'c' } });
    p = project(dir, join(dir, 'src'), env.url);
    await backup(p, ['--queue-only']);
    good = readFileSync(p.queue, 'utf8');
  });

  const edits: [string, (q: string) => string, RegExp][] = [
    // Cut short: the trailer (totals, the walk's records) and the root line are all gone.
    ['truncated (no root line)', (q) => q.split('\n').filter((l) => !/^# (totals|left out|directories):/.test(l)).slice(0, -2).join('\n') + '\n', /queue\.txt: no root line \(the last line, with an empty path\): the queue file is truncated$/],
    ['a bad escape', (q) => q.replace(/^a /m, 'a\\q '), /queue\.txt:\d+: bad escape "\\\\q" in a path$/],
    ['bad metadata', (q) => q.replace(/^a (\d+):(\d+):100644$/m, 'a $1:$2'), /queue\.txt:\d+: bad metadata "\d+:\d+" \(want UID:GID:MODE\[\/CAPS\[\/ACLS\]\]\)$/],
    ['a directory before its contents', (q) => { const l = q.split('\n'); const i = l.findIndex((x) => x.startsWith('sub ')); const [d] = l.splice(i, 1); l.splice(i - 2, 0, d!); return l.join('\n'); }, /queue\.txt:\d+: the directory line of "sub" is missing or out of place/],
    ['built for another source', (q) => q.replace(/^# source: .*$/m, '# source: /somewhere/else'), /queue file .*queue\.txt was built for "\/somewhere\/else", not ".*\/src"; rebuild it with -f$/],
  ];
  it.each(edits)('%s: exit 2, one line naming the file (and line), no backup recorded', async (_name, edit, re) => {
    writeFileSync(p.queue, edit(good));
    const r = await backup(p, ['--reuse-queue']);
    expect(r.code, r.stderr).toBe(2);
    oneLine(r, re);
    expect(existsSync(p.cache) ? cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n : 0).toBe(0);
  });
});

describe('bad entry caches', () => {
  function setup(): Project {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    return project(dir, join(dir, 'src'), env.url);
  }

  it('corrupt: exit 1, named; the file is left alone', async () => {
    const p = setup();
    writeFileSync(p.cache, Buffer.alloc(8192, 7));
    const r = await backup(p);
    expect(r.code).toBe(1);
    oneLine(r, /^lafs-backup: entry cache .*cache\.db is not a valid SQLite database \(corrupt\?\); move it away to start a new one$/);
    expect(readFileSync(p.cache).equals(Buffer.alloc(8192, 7))).toBe(true);
  });

  it('from a future schema version: refused untouched', async () => {
    const p = setup();
    await backup(p);
    const db = new Database(p.cache);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    const r = await runCli([...configArgs(p), 'list']);
    expect(r.code).toBe(1);
    oneLine(r, new RegExp(`^lafs-backup: entry cache .*cache\\.db was written by a newer lafs-backup \\(schema ${SCHEMA_VERSION + 1}, this one knows ${SCHEMA_VERSION}\\); refusing to touch it$`));
  });

  it('an SQLite database of something else: refused', async () => {
    const p = setup();
    const db = new Database(p.cache);
    db.exec('CREATE TABLE photos (id INTEGER)');
    db.close();
    const r = await backup(p);
    expect(r.code).toBe(1);
    oneLine(r, /is an SQLite database of something else \(no lafs-backup schema\)$/);
  });

  it.runIf(isRoot)('read-only (not writable by the user): exit 1, named', async () => {
    const p = setup();
    await backup(p);
    chmodSync(p.dir, 0o755);
    chownSync(p.queue, 65534, 65534);
    const r = await backup(p, [], unprivileged());
    expect(r.code).toBe(1);
    oneLine(r, /^lafs-backup: cannot lock the entry cache .*cache\.db \(lock .*cache\.db\.lock\): permission denied \(EACCES\)$/);
  });

  it('a directory where the cache should be: exit 1, named', async () => {
    const p = setup();
    mkdirSync(p.cache);
    const r = await backup(p);
    expect(r.code).toBe(1);
    oneLine(r, /^lafs-backup: entry cache .*cache\.db: cannot create or open it: is a directory \(EISDIR\)$/);
  });
});

describe('garbage and non-backup caps', () => {
  let p: Project;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    p = project(dir, join(dir, 'src'), env.url);
    await backup(p);
  });

  const LIT_FILE = 'URI:LIT:nbswy3dpeb3w64tmmqfa';
  const cases: [string, string[], number, RegExp][] = [
    ['check, garbage', ['check', 'garbage'], 2, /^lafs-backup: check: cap 1: not a valid Tahoe-LAFS cap: "garbage"$/],
    ['check, a file cap', ['check', LIT_FILE], 2, /^lafs-backup: check: cap 1: cap#[0-9a-f]{10} is a LIT cap, not a directory$/],
    ['cleanup, a malformed cap', ['cleanup', 'URI:DIR2-CHK:x'], 2, /^lafs-backup: cleanup: cap 1: not a valid Tahoe-LAFS cap: cap#[0-9a-f]{10}$/],
    ['cleanup, a file cap', ['cleanup', LIT_FILE], 2, /^lafs-backup: cleanup: cap 1: cap#[0-9a-f]{10} is a LIT cap, not a directory$/],
    ['restore, garbage', ['restore', 'nonsense', '/tmp/never-made'], 2, /^lafs-backup: BACKUP: no backup named "nonsense" in .*cache\.db$/],
    ['restore, a file cap', ['restore', LIT_FILE, '/tmp/never-made'], 2, /^lafs-backup: BACKUP: cap#[0-9a-f]{10} is a LIT cap, not a directory$/],
    ['restore, a dircap that is not there', ['restore', 'URI:DIR2-CHK:cwxvzzci5sjtxzlp7awbxeopjm:vl7lv7g4zmxychhonethqzrp2ljicgx4qpcvniyxz22vpaelolka:2:4:300', '/tmp/lb-restore-gone'], 1, /^lafs-backup: GET \?t=json of cap#[0-9a-f]{10}: gateway answered 410: the object cannot be recovered: too few of its shares were found .*\(gateway: NoSharesError: /],
    ['ls, a name that is not a backup', ['ls', 'nope'], 2, /^lafs-backup: BACKUP: no backup named "nope" in /],
  ];
  it.each(cases)('%s: one line, the documented exit code', async (_n, args, code, re) => {
    const r = await runCli([...configArgs(p), ...args]);
    expect(r.code, r.stderr).toBe(code);
    oneLine(r, re);
    expect(existsSync('/tmp/never-made')).toBe(false);
  });
});
