/**
 * Listing that answers the question asked (issue 26, item 8): `ls` sizes as on disk, names
 * escaped one way in text and JSON; `restore` and `check` end with one summary line. And the
 * entry cache's store of directory listings that ls, find, stats and dump read through.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir, writeRaw } from '../support/tree.js';

const env = useGrid();
const TEXT = 'a line of a log\n'.repeat(3000);

describe('ls, restore and check say what a person asks', () => {
  let p: Project;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { 'text.log': TEXT, 'random.bin': randomBytes(8000), 'new\nline': 'n', 'back\\slash': 'b', sub: { 'f.txt': 'f' } });
    writeRaw(join(dir, 'src'), Buffer.from([0x62, 0xff, 0x2d]), 'not UTF-8');
    p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p)).code).toBe(0);
  });

  it('ls shows the size on disk; -l and --json add the size as stored and the encoding', async () => {
    const plain = await runCli([...configArgs(p), 'ls', 'src']);
    expect(plain.stdout).toMatch(new RegExp(`^-rw-r--r-- \\S+ +${TEXT.length} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d text\\.log$`, 'm'));
    const long = await runCli([...configArgs(p), 'ls', '-l', 'src']);
    const m = new RegExp(`^-rw-r--r-- \\S+ +${TEXT.length} +(\\d+) xz \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d text\\.log$`, 'm').exec(long.stdout);
    expect(m, long.stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(TEXT.length / 10);
    expect(long.stdout).toMatch(/^-rw-r--r-- \S+ +8000 +8000 {4}\d{4}.* random\.bin$/m);
    const json = JSON.parse((await runCli([...configArgs(p), 'ls', '--json', 'src', 'text.log'])).stdout);
    expect(json).toEqual([expect.objectContaining({ path: 'text.log', size: TEXT.length, stored_size: Number(m![1]), enc: 'xz' })]);
  });

  it('names are escaped one way in text and JSON; JSON carries the bytes of a name escaping changed', async () => {
    const text = (await runCli([...configArgs(p), 'ls', 'src'])).stdout.trim().split('\n').map((l) => l.replace(/^.* \d\d:\d\d:\d\d /, ''));
    const json = JSON.parse((await runCli([...configArgs(p), 'ls', '--json', 'src'])).stdout) as { path: string; path_base64?: string; type: string }[];
    expect(json.map((e) => e.path + (e.type === 'dir' ? '/' : ''))).toEqual(text);
    const bytes = (path: string) => Buffer.from(json.find((e) => e.path === path)!.path_base64 ?? '', 'base64');
    expect(text).toEqual(expect.arrayContaining(['b\\xff-', 'new\\nline', 'back\\\\slash']));
    expect(bytes('b\\xff-')).toEqual(Buffer.from([0x62, 0xff, 0x2d]));
    expect(bytes('new\\nline').toString()).toBe('new\nline');
    expect(bytes('back\\\\slash').toString()).toBe('back\\slash');
    expect(json.find((e) => e.path === 'text.log')).not.toHaveProperty('path_base64');
  });

  // A path copied from what ls or find printed names that entry: `new\nline` as printed was
  // "not in the backup" (the path was looked up as the grid's child name, which has the newline).
  it('dump, ls and restore --path take a path as ls and find print it, escapes and all', async () => {
    const printed = (await runCli([...configArgs(p), 'ls', 'src'])).stdout.trim().split('\n').map((l) => l.replace(/^.* \d\d:\d\d:\d\d /, ''));
    const want: Record<string, string> = { 'new\\nline': 'n', 'back\\\\slash': 'b' };
    for (const [shown, contents] of Object.entries(want)) {
      expect(printed).toContain(shown);
      const d = await runCli([...configArgs(p), 'dump', 'src', shown]);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toBe(contents);
      const l = await runCli([...configArgs(p), 'ls', 'src', shown]);
      expect(l.stdout.trim().split('\n').map((x) => x.replace(/^.* \d\d:\d\d:\d\d /, ''))).toEqual([shown]);
      // restore --path takes the same form, and the file comes back under its own name.
      const dest = join(tempDir(), 'one');
      const r = await runCli([...configArgs(p), 'restore', '-q', '--path', shown, 'src', dest]);
      expect(r.code, r.stderr).toBe(0);
      const real = shown === 'new\\nline' ? 'new\nline' : 'back\\slash';
      expect(readFileSync(join(dest, real), 'utf8')).toBe(contents);
    }
    // A name that is not UTF-8, as printed; and the name itself still works.
    expect((await runCli([...configArgs(p), 'dump', 'src', 'b\\xff-'])).stdout).toBe('not UTF-8');
    expect((await runCli([...configArgs(p), 'dump', 'src', 'new\nline'])).stdout).toBe('n');
  });

  itEmbedded('a gateway that answers a non-directory for a directory (a wrong URL) is an error, not an empty listing', async () => {
    const cap = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout).backups[0].cap;
    const wrong = join(tempDir(), 'wrong.yaml');
    // Ends in /uri, so it passes as a gateway URL; the gateway answers ["unknown", {}] there.
    writeFileSync(wrong, `destination: {url: '${env.url}/uri'}\nhttp: {retry: {attempts: 0}}\n`);
    const r = await runCli(['-c', wrong, 'ls', '-'], { input: `${cap}\n` });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^lafs-backup: GET \?t=json of cap#[0-9a-f]{10}: the gateway answered a (unknown|filenode) node where the backup has a directory\n$/);
  });

  it('restore and check end with one summary line on stderr; -q leaves it out', async () => {
    const dest = join(tempDir(), 'r');
    const r = await runCli([...configArgs(p), 'restore', 'src', dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^lafs-backup: restore of "src@1" into "${dest}" done in [\\d.]+ s: 6 files \\([\\d.]+ KiB\\), 1 directory, 0 symlinks\\n$`));
    const quiet = await runCli([...configArgs(p), 'restore', 'src', join(tempDir(), 'q'), '-q']);
    expect(quiet.stderr).toBe('');
    const c = await runCli([...configArgs(p), 'check']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/^lafs-backup: check of 1 backup done in [\d.]+ s: 1 healthy; \d+ nodes checked; leases renewed\n$/);
    expect((await runCli([...configArgs(p), 'check', '-q'])).stderr).toBe('');
  });
});

describe('the store of directory listings', () => {
  let p: Project;
  let src: string;
  beforeAll(async () => {
    const dir = tempDir();
    src = join(dir, 'src');
    makeTree(src, { a: { one: { 'f.txt': 'one' } }, b: { 'g.txt': 'g' }, 'top.txt': 't' });
    p = project(dir, src, env.url);
    expect((await backup(p)).code).toBe(0);
  });

  itEmbedded('a listing read once is not asked for again: ls, find, stats and dump read through the entry cache', async () => {
    env.grid.resetStats();
    expect((await runCli([...configArgs(p), 'ls', '-R', 'src'])).code).toBe(0);
    expect(env.grid.stats.get_json).toBe(4); // the root, a, a/one, b
    env.grid.resetStats();
    for (const args of [['ls', '-R', 'src'], ['find', '*.txt'], ['stats'], ['dump', 'src', 'a/one/f.txt']]) expect((await runCli([...configArgs(p), ...args])).code, args[0]).toBe(0);
    expect(env.grid.stats.get_json).toBe(0);
    // Each costs its key and its children, deflated.
    const [row] = cacheRows(p.cache, 'SELECT count(*) AS n, sum(length(body) + length(key)) AS bytes FROM listings');
    expect(row!.n).toBe(4);
  });

  it('cleanup forgets the listings no kept backup reaches', async () => {
    await runCli([...configArgs(p), 'ls', '-R', 'src']);
    // The next night changes a/one: the root, a and a/one are new directories; b is shared.
    writeFileSync(join(src, 'a', 'one', 'f.txt'), 'changed');
    expect((await backup(p)).code).toBe(0);
    await runCli([...configArgs(p), 'stats']);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM listings')[0]!.n).toBe(7);
    const c = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1']);
    expect(c.code, c.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM listings')[0]!.n).toBe(4);
    const found = await runCli([...configArgs(p), 'find', 'f.txt']);
    expect(found.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^src@2 +7 .* a\/one\/f\.txt$/)]);
  });
});

describe('a name that starts with "-", given after --', () => {
  let p: Project;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { '-draft.txt': 'the draft\n', 'other.txt': 'other' });
    p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p)).code).toBe(0);
  });

  // yargs leaves what follows `--` out of a command's positional arguments: `ls src -- -draft.txt`
  // listed the whole backup, `dump src -- -draft.txt` wrote the whole backup as a tar, and
  // `find -- -draft.txt` was a usage error — there was no way to name such a file at all.
  it('ls, dump and find take it as the argument it is, as rm -- -f does', async () => {
    const ls = await runCli([...configArgs(p), 'ls', 'src', '--', '-draft.txt']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim().split('\n')).toEqual([expect.stringMatching(/ -draft\.txt$/)]);
    const dump = await runCli([...configArgs(p), 'dump', 'src', '--', '-draft.txt']);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toBe('the draft\n');
    const find = await runCli([...configArgs(p), 'find', '--backup', 'src', '--', '-draft.txt', 'other.txt']);
    expect(find.code, find.stderr).toBe(0);
    expect(find.stdout.trim().split('\n').map((l) => l.split(/ +/).pop()).sort()).toEqual(['-draft.txt', 'other.txt']);
    // One argument too many after -- is still a usage error, naming it.
    const extra = await runCli([...configArgs(p), 'ls', 'src', '--', '-draft.txt', 'more']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/^lafs-backup: Unknown argument: more \(see --help\)\n$/);
  });
});
