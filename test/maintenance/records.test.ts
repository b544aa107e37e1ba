/**
 * What the cache records about finished backups, how backups are named and found, and what
 * retention and cleanup do with them (issue 24, items 1-3), end to end with the CLI. Items 1
 * and 2 run against a real gateway too (LAFS_TEST_GATEWAY).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

async function mutableDir(): Promise<string> {
  const c = new TahoeClient({ url: env.url });
  try {
    return await c.mkdirMutable();
  } finally {
    await c.close();
  }
}

/** The lafs dir's links: name → cap. */
async function links(dircap: string): Promise<Record<string, string | undefined>> {
  const c = new TahoeClient({ url: env.url });
  try {
    return Object.fromEntries(Object.entries((await c.info(dircap)).children ?? {}).map(([k, v]) => [k, v.ro_uri]));
  } finally {
    await c.close();
  }
}

function change(p: Project, rel: string, content: string): void {
  const f = join(p.source, rel);
  writeFileSync(f, content);
  const old = new Date(Date.now() - 3600_000);
  utimesSync(f, old, old);
}

/** Sets when a backup finished, as a clock set back would have recorded it. */
function setFinished(p: Project, generation: number, ts: number): void {
  const db = new Database(p.cache);
  try {
    db.prepare('UPDATE backups SET ts = ? WHERE generation = ?').run(ts, generation);
  } finally {
    db.close();
  }
}

const results = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const rowNames = (p: Project) => cacheRows(p.cache, 'SELECT name, generation FROM backups ORDER BY generation').map((r) => `${r.name}@${r.generation}`);

describe('cleanup keeps the records of what it keeps (24.1)', () => {
  it('three unchanged nights, --keep-last 1: the result lines and the lafs-dir link of the kept cap stay; -e lists nothing', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), sub: { b: 'b'.repeat(200) } });
    const lafs = await mutableDir();
    const file = join(dir, 'results.txt');
    const p = project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${file}', append_to_lafs_dir: '${lafs}'}}\n`);
    const caps: string[] = [];
    for (let i = 0; i < 3; i++) caps.push((await backup(p)).cap);
    expect(new Set(caps).size).toBe(1);
    const cap = caps[0]!;

    const shares = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1', '-e', '-', '-n']);
    expect(shares.code, shares.stderr).toBe(0);
    expect(shares.stdout.trim()).toBe('');

    const r = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/forgetting backup "src", generation 1/);
    expect(rowNames(p)).toEqual(['src@3']);
    // The kept generation has the cap: nothing off the host may stop recording it.
    expect(results(file)).toHaveLength(3);
    for (const l of results(file)) expect(l.endsWith(` ${cap}`)).toBe(true);
    expect(await links(lafs)).toEqual({ src: cap });

    // A changed night, and the same cleanup: now the old cap goes from the result file; the link
    // points at the new backup already and stays.
    change(p, 'a', 'A'.repeat(100));
    const next = (await backup(p)).cap;
    expect(next).not.toBe(cap);
    const again = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1']);
    expect(again.code, again.stderr).toBe(0);
    expect(results(file).map((l) => l.split(' ').pop())).toEqual([next]);
    expect(await links(lafs)).toEqual({ src: next });
  });

  it('forgetting a cap by name also forgets its other generations, and then its records go', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    const lafs = await mutableDir();
    const file = join(dir, 'results.txt');
    const p = project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${file}', append_to_lafs_dir: '${lafs}'}}\n`);
    const first = (await backup(p)).cap;
    await backup(p);
    change(p, 'a', 'changed');
    const kept = (await backup(p)).cap;
    const r = await runCli([...configArgs(p), 'cleanup', '-'], { input: `${first}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(rowNames(p)).toEqual(['src@3']);
    expect(results(file).map((l) => l.split(' ').pop())).toEqual([kept]);
  });
});

describe("the README's set-up: one series per configured source (24.2)", () => {
  it('source.path /srv/snapshots/daily.*: every night is "daily", retention runs, the lafs dir has one link', async () => {
    const dir = tempDir();
    const snaps = join(dir, 'srv', 'snapshots');
    makeTree(join(snaps, 'daily.2026-11-20'), { 'notes.txt': 'night 1', etc: { conf: 'c'.repeat(300) } });
    // A stray file matching the glob is not a snapshot.
    writeFileSync(join(snaps, 'daily.9.log'), 'log');
    const lafs = await mutableDir();
    const file = join(dir, 'results.txt');
    const p = project(dir, join(snaps, 'daily.*'), env.url, `destination: {result: {append_to_file: '${file}', append_to_lafs_dir: '${lafs}'}}\n`);
    const caps: string[] = [];
    for (const [night, text] of [['2026-11-20', 'night 1'], ['2026-11-21', 'night 2'], ['2026-11-22', 'night 3']] as const) {
      if (night !== '2026-11-20') {
        cpSync(join(snaps, 'daily.2026-11-20'), join(snaps, `daily.${night}`), { recursive: true, preserveTimestamps: true });
        const f = join(snaps, `daily.${night}`, 'notes.txt');
        writeFileSync(f, text);
        utimesSync(f, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
      }
      const r = await backup(p, ['--json']);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({ name: 'daily', source: join(snaps, `daily.${night}`) });
      caps.push(j.cap);
    }
    expect(new Set(caps).size).toBe(3);
    const list = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout);
    expect(list.backups.map((b: { name: string; source: string }) => `${b.name} ${b.source}`)).toEqual([
      `daily ${join(snaps, 'daily.2026-11-20')}`,
      `daily ${join(snaps, 'daily.2026-11-21')}`,
      `daily ${join(snaps, 'daily.2026-11-22')}`,
    ]);
    // The result file keeps the directory backed up; the lafs dir one link, to the newest.
    expect(results(file).map((l) => l.split(' ')[1])).toEqual(list.backups.map((b: { source: string }) => b.source));
    expect(await links(lafs)).toEqual({ daily: caps[2] });

    const dry = await runCli([...configArgs(p), 'cleanup', '--keep-last', '2', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would forget backup "daily", generation 1, finished /m);
    const r = await runCli([...configArgs(p), 'cleanup', '--keep-last', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(rowNames(p)).toEqual(['daily@2', 'daily@3']);
    expect(results(file).map((l) => l.split(' ').pop())).toEqual(caps.slice(1));
    expect(await links(lafs)).toEqual({ daily: caps[2] });

    const dest = join(dir, 'restored');
    const restored = await runCli([...configArgs(p), 'restore', 'daily', dest]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(readFileSync(join(dest, 'notes.txt'), 'utf8')).toBe('night 3');
    const older = await runCli([...configArgs(p), 'ls', 'daily@2']);
    expect(older.code, older.stderr).toBe(0);
    expect(older.stdout).toMatch(/ notes\.txt$/m);
  });

  it('a symlinked source keeps its link name night after night', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'snaps', 'a'), { f: 'one' });
    makeTree(join(dir, 'snaps', 'b'), { f: 'two' });
    symlinkSync(join(dir, 'snaps', 'a'), join(dir, 'current'));
    const lafs = await mutableDir();
    const p = project(dir, join(dir, 'current'), env.url, `destination: {result: {append_to_lafs_dir: '${lafs}'}}\n`);
    const first = await backup(p);
    expect(first.code, first.stderr).toBe(0);
    unlinkSync(join(dir, 'current'));
    symlinkSync(join(dir, 'snaps', 'b'), join(dir, 'current'));
    const second = await backup(p);
    expect(second.code, second.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT name, source FROM backups ORDER BY generation')).toEqual([
      { name: 'current', source: join(dir, 'snaps', 'a') },
      { name: 'current', source: join(dir, 'snaps', 'b') },
    ]);
    expect(await links(lafs)).toEqual({ current: second.cap });
    const r = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(rowNames(p)).toEqual(['current@2']);
  });

  it('backups an older version named after the matched directory join the series at the next backup; their old links go with them', async () => {
    const dir = tempDir();
    const snaps = join(dir, 'snaps');
    makeTree(join(snaps, 'daily.1'), { f: 'one' });
    makeTree(join(dir, 'elsewhere'), { g: 'other' });
    const lafs = await mutableDir();
    const p = project(dir, join(snaps, 'daily.*'), env.url, `destination: {result: {append_to_lafs_dir: '${lafs}'}}\n`);
    const old = await backup(p);
    expect(old.code, old.stderr).toBe(0);
    // As an older lafs-backup recorded and linked it: under the matched directory's name. And
    // a backup of another source in the same cache.
    mkdirSync(join(dir, 'q'));
    const q = project(join(dir, 'q'), join(dir, 'elsewhere'), env.url);
    writeFileSync(q.config, readFileSync(q.config, 'utf8').replace(q.cache, p.cache));
    expect((await backup(q)).code).toBe(0);
    const db = new Database(p.cache);
    db.prepare("UPDATE backups SET name = 'daily.1' WHERE generation = 1").run();
    db.close();
    const c = new TahoeClient({ url: env.url });
    await c.unlink(lafs, 'daily');
    await c.link(lafs, 'daily.1', old.cap);
    await c.close();

    makeTree(join(snaps, 'daily.2'), { f: 'two' });
    const next = await backup(p);
    expect(next.code, next.stderr).toBe(0);
    expect(rowNames(p)).toEqual(['daily@1', 'elsewhere@2', 'daily@3']);
    expect(await links(lafs)).toEqual({ 'daily.1': old.cap, daily: next.cap });
    const r = await runCli([...configArgs(p), 'cleanup', '--keep-last', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(rowNames(p)).toEqual(['elsewhere@2', 'daily@3']);
    expect(await links(lafs)).toEqual({ daily: next.cap });
  });

  it('two sources of one name in one lafs dir: the second is refused in one line (exit 1), recorded, and the first link stays', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'a', 'data'), { f: 'from a' });
    makeTree(join(dir, 'b', 'data'), { f: 'from b' });
    const lafs = await mutableDir();
    const extra = `destination: {result: {append_to_lafs_dir: '${lafs}'}}\n`;
    mkdirSync(join(dir, 'pa'));
    mkdirSync(join(dir, 'pb'));
    const a = project(join(dir, 'pa'), join(dir, 'a', 'data'), env.url, extra);
    const b = project(join(dir, 'pb'), join(dir, 'b', 'data'), env.url, extra);
    const first = await backup(a);
    expect(first.code, first.stderr).toBe(0);
    const second = await backup(b);
    expect(second.code).toBe(1);
    expect(second.cap).toMatch(/^URI:DIR2/);
    expect(withoutSummary(second.stderr).trim().split('\n')).toEqual([
      'lafs-backup: the backup is recorded, but its result could not be delivered: destination.result.append_to_lafs_dir: "data" there links something that is not a backup of this source in its entry cache (another source of the same name?); it was left as it is. Give this source its own source.name, or unlink that entry if it is stale',
    ]);
    expect(await links(lafs)).toEqual({ data: first.cap });
    expect(cacheRows(b.cache, 'SELECT name, cap FROM backups')).toEqual([{ name: 'data', cap: second.cap }]);
    // The first source's next night replaces its own link as before.
    change(a, 'f', 'from a, night 2');
    const again = await backup(a);
    expect(again.code, again.stderr).toBe(0);
    expect(await links(lafs)).toEqual({ data: again.cap });
    // A name of its own settles it.
    writeFileSync(b.extra[0]!, `${extra}source: {name: data-b}\n`);
    const named = await backup(b);
    expect(named.code, named.stderr).toBe(0);
    expect(await links(lafs)).toEqual({ data: again.cap, 'data-b': named.cap });
  });

  it('a name that cannot name backups is refused before anything is done', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'data@2'), { f: 'f' });
    const p = project(dir, join(dir, 'data@2'), env.url);
    const r = await backup(p);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('lafs-backup: source.name (taken from source.path; set it to choose another): "data@2" cannot name backups: it ends in @DIGITS, which NAME@GENERATION reads as a generation\n');
    expect(existsSync(p.cache)).toBe(false);
    const q = project(tempDir(), join(dir, 'data@2'), env.url, "source: {name: 'x/y'}\n");
    const bad = await runCli([...configArgs(q), 'dump-config']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^lafs-backup: .*extra\.yaml: source\.name: "x\/y" cannot name backups: it contains "\/"\n$/);
  });
});

describe('newest means the highest generation (24.3)', () => {
  it('with the clock set back a day, NAME is the highest generation, and --keep-last/--keep-daily keep it', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'one' });
    const p = project(dir, join(dir, 'src'), env.url);
    for (const text of ['one', 'two', 'three']) {
      change(p, 'f', text);
      expect((await backup(p)).code).toBe(0);
    }
    const [t1, t2] = cacheRows(p.cache, 'SELECT ts FROM backups ORDER BY generation').map((r) => r.ts as number);
    setFinished(p, 1, t1! - 2 * 86400);
    setFinished(p, 2, t2! - 86400);
    // The newest run's clock was a day behind: it finished "before" the two others.
    setFinished(p, 3, t1! - 3 * 86400);

    const dest = join(dir, 'restored');
    const r = await runCli([...configArgs(p), 'restore', 'src', dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dest, 'f'), 'utf8')).toBe('three');
    const list = await runCli([...configArgs(p), 'list']);
    expect(list.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['1', '2', '3']);
    for (const policy of [['--keep-last', '1'], ['--keep-daily', '1']]) {
      const dry = await runCli([...configArgs(p), 'cleanup', ...policy, '--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout.match(/generation \d+(?=, finished)/g), policy.join(' ')).toEqual(['generation 1', 'generation 2']);
    }
  });

  it('NAME@N is never silently taken for a backup whose name ends in @digits', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'one' });
    const p = project(dir, join(dir, 'src'), env.url);
    const first = (await backup(p)).cap;
    change(p, 'f', 'two');
    const second = (await backup(p)).cap;
    // An older lafs-backup named backups after directories, and a directory was called "src@1".
    const db = new Database(p.cache);
    db.prepare("UPDATE backups SET name = 'src@1' WHERE generation = 2").run();
    db.close();
    const amb = await runCli([...configArgs(p), 'ls', 'src@1']);
    expect(amb.code).toBe(2);
    expect(amb.stderr).toBe('lafs-backup: BACKUP: "src@1" is ambiguous: generation 1 of "src", or the backups named "src@1" (for those give src@1@GENERATION; `list` shows both)\n');
    const literal = await runCli([...configArgs(p), 'restore', 'src@1@2', join(dir, 'r2')]);
    expect(literal.code, literal.stderr).toBe(0);
    expect(readFileSync(join(dir, 'r2', 'f'), 'utf8')).toBe('two');
    const byGen = await runCli([...configArgs(p), 'restore', 'src', join(dir, 'r1')]);
    expect(byGen.code, byGen.stderr).toBe(0);
    expect(readFileSync(join(dir, 'r1', 'f'), 'utf8')).toBe('one');
    expect(first).not.toBe(second);
  });
});
