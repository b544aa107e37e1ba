/**
 * Caps given without a command line (issue 24, items 4 and 9): `-` reads them from stdin and
 * `--cap-file FILE` from a file, for every command that takes caps; garbage there is a usage
 * error as it is on the command line. And `check -a` rotating over distinct caps.
 */
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

function change(p: Project, rel: string, content: string): void {
  const f = join(p.source, rel);
  writeFileSync(f, content);
  const old = new Date(Date.now() - 3600_000);
  utimesSync(f, old, old);
}

/** A directory cap of the same shape as `cap` that names nothing on the grid. */
function notOnGrid(cap: string): string {
  const parts = cap.split(':');
  const key = parts[2]!;
  parts[2] = (key[0] === 'a' ? 'b' : 'a') + key.slice(1);
  return parts.join(':');
}

describe('caps on stdin and in files', () => {
  let p: Project;
  let first: string;
  let second: string;
  let capFile: string;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'one', sub: { g: 'g'.repeat(300) } });
    p = project(dir, join(dir, 'src'), env.url);
    first = (await backup(p)).cap;
    change(p, 'f', 'two');
    second = (await backup(p)).cap;
    capFile = join(dir, 'second.cap');
    writeFileSync(capFile, `${second}\n`, { mode: 0o600 });
  });

  it('check - checks the caps on stdin, only those', async () => {
    const r = await runCli([...configArgs(p), 'check', '--json', '-'], { input: `${first}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).map((o: { generation: number }) => o.generation)).toEqual([1]);
    // Lines of a result file count as they are: the cap is the last field.
    const lines = await runCli([...configArgs(p), 'check', '--json', '-'], { input: `2026-11-21T02:30:00.000Z ${p.source} ${second}\n# a comment\n\n` });
    expect(lines.code, lines.stderr).toBe(0);
    expect(JSON.parse(lines.stdout).map((o: { generation: number }) => o.generation)).toEqual([2]);
    const file = await runCli([...configArgs(p), 'check', '--json', '--cap-file', capFile]);
    expect(file.code, file.stderr).toBe(0);
    expect(JSON.parse(file.stdout).map((o: { generation: number }) => o.generation)).toEqual([2]);
  });

  it('check - with a cap that is not on the grid: exit 4, named', async () => {
    const r = await runCli([...configArgs(p), 'check', '-'], { input: `${notOnGrid(first)}\n` });
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toMatch(/^cap#[0-9a-f]{10}: /m);
  });

  it('garbage or nothing on stdin is a usage error, for check and cleanup alike', async () => {
    for (const cmd of ['check', 'cleanup']) {
      const garbage = await runCli([...configArgs(p), cmd, '-'], { input: `${first}\nnot a cap\n` });
      expect(garbage.code, garbage.stderr).toBe(2);
      expect(garbage.stderr).toBe(`lafs-backup: ${cmd}: stdin line 2: not a valid Tahoe-LAFS cap: "cap"\n`);
      const empty = await runCli([...configArgs(p), cmd, '-'], { input: '' });
      expect(empty.code, empty.stderr).toBe(2);
      expect(empty.stderr).toBe(`lafs-backup: ${cmd}: stdin holds no caps\n`);
      const file = await runCli([...configArgs(p), cmd, '--cap-file', join(p.dir, 'missing.cap')]);
      expect(file.code).toBe(2);
      expect(file.stderr).toMatch(new RegExp(`^lafs-backup: ${cmd}: --cap-file .*missing\\.cap: cannot open it: no such file or directory \\(ENOENT\\)\\n$`));
    }
    // Nothing was forgotten.
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(2);
  });

  it('ls, restore and diff take BACKUP as - (stdin) or from --cap-file', async () => {
    const ls = await runCli([...configArgs(p), 'ls', '-', 'sub'], { input: `${first}\n` });
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/ sub\/g$/m);
    const dest = join(p.dir, 'restored');
    const restore = await runCli([...configArgs(p), 'restore', '--cap-file', capFile, dest]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(readFileSync(join(dest, 'f'), 'utf8')).toBe('two');
    const diff = await runCli([...configArgs(p), 'diff', '-', '--cap-file', capFile], { input: first });
    expect(diff.code, diff.stderr).toBe(0);
    expect(diff.stdout.trim()).toMatch(/^M f \(.*contents/);
    const local = await runCli([...configArgs(p), 'diff', '--cap-file', capFile, p.source]);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toBe('');
  });

  it('ls, restore and diff refuse garbage, several caps, or two stdins in one line, exit 2', async () => {
    const cases: [string[], string, RegExp][] = [
      [['ls', '-'], 'garbage\n', /^lafs-backup: ls: BACKUP: stdin line 1: not a valid Tahoe-LAFS cap: "garbage"$/],
      [['restore', '-', join(p.dir, 'never')], `${first}\n${second}\n`, /^lafs-backup: restore: BACKUP: stdin holds 2 caps; give exactly one$/],
      [['diff', '-', '-'], `${first}\n`, /^lafs-backup: diff: only one argument can be read from stdin \(-\); give the other with --cap-file$/],
      [['restore', '--cap-file', capFile], '', /^lafs-backup: Not enough non-option arguments: restore needs BACKUP and DEST \(--cap-file gives BACKUP\) \(see --help\)$/],
      [['ls', '--cap-file', capFile, 'sub', 'extra'], '', /^lafs-backup: Unknown argument: extra \(see --help\)$/],
    ];
    for (const [args, input, re] of cases) {
      const r = await runCli([...configArgs(p), ...args], { input });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim(), args.join(' ')).toMatch(re);
    }
  });

  it('cleanup --cap-file forgets the backup named in the file', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'one' });
    const q = project(dir, join(dir, 'src'), env.url);
    const old = (await backup(q)).cap;
    change(q, 'f', 'two');
    await backup(q);
    const file = join(dir, 'old.cap');
    writeFileSync(file, `${old}\n`);
    const r = await runCli([...configArgs(q), 'cleanup', '--cap-file', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(cacheRows(q.cache, 'SELECT generation FROM backups')).toEqual([{ generation: 2 }]);
  });
});

describe('check -a rotates over distinct caps', () => {
  it('nights that share a cap are one object: each is checked in turn, the oldest check first', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'one' });
    const p = project(dir, join(dir, 'src'), env.url);
    const caps = [(await backup(p)).cap, (await backup(p)).cap];
    change(p, 'f', 'two');
    caps.push((await backup(p)).cap, (await backup(p)).cap);
    expect(new Set(caps).size).toBe(2);
    // Without -a, each distinct cap is checked once, by its newest backup's name.
    const all = await runCli([...configArgs(p), 'check', '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout).map((o: { generation: number }) => o.generation)).toEqual([2, 4]);
    // Every row of a checked cap records the check.
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups WHERE ts_check IS NULL')[0]!.n).toBe(0);

    const q = project(tempDir(), join(dir, 'src'), env.url);
    for (let i = 0; i < 2; i++) await backup(q);
    change(q, 'f', 'three');
    for (let i = 0; i < 2; i++) await backup(q);
    const picked: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runCli([...configArgs(q), 'check', '-a', '--json']);
      expect(r.code, r.stderr).toBe(0);
      picked.push(JSON.parse(r.stdout)[0].generation);
    }
    expect(picked).toEqual([2, 4, 2]);
  });
});
