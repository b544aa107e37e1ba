/**
 * `find` end to end: which backups and generations hold matching paths, newest first; answered
 * from the entry cache's listings when it has them (no request), from the grid for the rest, and
 * still answered when the cache is lost (the result file names every backup).
 */
import { renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const when = new Date('2025-03-01T10:00:00Z');

describe('find', () => {
  let p: Project;
  const caps: string[] = [];
  beforeAll(async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { docs: { 'report.txt': 'first draft\n', 'Notes.MD': 'notes' }, 'big.log': 'log line\n'.repeat(4000), photos: { 'a.jpg': 'jpeg' } });
    utimesSync(join(src, 'docs', 'report.txt'), when, when);
    p = project(dir, src, env.url, `destination: {result: {append_to_file: '${join(dir, 'results.txt')}'}}\n`);
    caps.push((await backup(p)).cap);
    writeFileSync(join(src, 'docs', 'report.txt'), 'the final version, longer\n');
    makeTree(join(src, 'docs'), { 'new.txt': 'new' });
    caps.push((await backup(p)).cap);
    // A night with no change: the same tree, the same root cap.
    caps.push((await backup(p)).cap);
    expect(caps[2]).toBe(caps[1]);
  });

  it('prints backup@generation, size as on disk, mtime and path for every generation, newest first; --json has the fields', async () => {
    const r = await runCli([...configArgs(p), 'find', 'report.txt']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/ +/)[0])).toEqual(['src@3', 'src@2', 'src@1']);
    expect(lines[0]).toMatch(/^src@3 +26 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d docs\/report\.txt$/);
    expect(lines[2]).toBe('src@1           12 2025-03-01 10:00:00 docs/report.txt');
    // A pattern with a slash is the path from the root; a compressed file's size is as on disk.
    const json = JSON.parse((await runCli([...configArgs(p), 'find', '--json', '/*.log', 'docs/*.md', '-i', '--backup', 'src@1'])).stdout);
    expect(json).toEqual([
      expect.objectContaining({ name: 'src', generation: 1, path: 'big.log', type: 'file', size: 36000, enc: 'xz', mode: '644' }),
      expect.objectContaining({ name: 'src', generation: 1, path: 'docs/Notes.MD', size: 5, enc: null }),
    ]);
    expect(json[0].stored_size).toBeLessThan(36000);
    expect(json[0].content).toMatch(/^cap#[0-9a-f]{10}$/);
  });

  it('--newer, --older and --size select by mtime and size; a directory matches by name', async () => {
    const newer = await runCli([...configArgs(p), 'find', '*.txt', '--newer', '2025-06-01', '--backup', 'src@2']);
    expect(newer.stdout.trim().split('\n').map((l) => l.split(/ +/).pop())).toEqual(['docs/new.txt', 'docs/report.txt']);
    const older = await runCli([...configArgs(p), 'find', '*.txt', '--older', '2025-03-01T10:00:01Z']);
    expect(older.stdout.trim().split('\n')).toEqual(['src@1           12 2025-03-01 10:00:00 docs/report.txt']);
    const sized = await runCli([...configArgs(p), 'find', '*', '--size', '+20', '--size', '-1k', '--backup', 'src']);
    expect(sized.stdout.trim().split('\n').map((l) => l.split(/ +/)[0] + ' ' + l.split(/ +/).pop())).toEqual(['src@3 docs/report.txt', 'src@2 docs/report.txt']);
    const dirs = await runCli([...configArgs(p), 'find', 'photos', '--backup', 'src@1']);
    expect(dirs.stdout).toMatch(/^src@1 +- .* photos\/$/m);
  });

  itEmbedded('answers from the entry cache when it has the listings: no request for a directory read before', async () => {
    await runCli([...configArgs(p), 'find', 'nothing-matches-this']);
    env.grid.resetStats();
    const again = await runCli([...configArgs(p), 'find', '*.jpg']);
    expect(again.stdout.trim().split('\n')).toHaveLength(3);
    expect(env.grid.stats.get_json).toBe(0);
    expect(Number(cacheRows(p.cache, 'SELECT count(*) AS n FROM listings')[0]!.n)).toBe(5); // root and docs of each night that changed, and photos, which both share
  });

  it('a lost entry cache does not make it blind: the result file names the backups, the grid has the trees', async () => {
    renameSync(p.cache, `${p.cache}.lost`);
    try {
      const r = await runCli([...configArgs(p), 'find', 'new.txt']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      // Named by their series, with their time for a generation no one remembers.
      expect(lines).toHaveLength(2);
      for (const l of lines) expect(l).toMatch(/^src\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) +3 .* docs\/new\.txt$/);
    } finally {
      renameSync(`${p.cache}.lost`, p.cache);
    }
  });

  it('takes backups as caps off the command line (--backup -, --cap-file); bad input is one line', async () => {
    const stdin = await runCli([...configArgs(p), 'find', 'report.txt', '--backup', '-'], { input: `${caps[0]}\n` });
    expect(stdin.code, stdin.stderr).toBe(0);
    expect(stdin.stdout.trim().split('\n').map((l) => l.split(/ +/)[0])).toEqual(['src@1']);
    const file = join(tempDir(), 'caps');
    writeFileSync(file, `2026-01-01T00:00:00Z /x ${caps[1]}\n`, { mode: 0o600 });
    const viaFile = await runCli([...configArgs(p), 'find', 'new.txt', '--cap-file', file]);
    expect(viaFile.stdout.trim().split('\n').map((l) => l.split(/ +/)[0])).toEqual(['src@3', 'src@2']);
    for (const [args, line] of [
      [['--size', '10x'], 'lafs-backup: --size: "10x" is not a size (+1M: at least a MiB, -10k: at most 10 KiB, 4096: exactly)'],
      [['--newer', 'yesterday'], 'lafs-backup: --newer: "yesterday" is neither a date (2026-11-01, 2026-11-01T12:00, with Z or +01:00 for a zone) nor a time back from now (7d, 12h, 2w, 1y2m)'],
      [['--backup', 'nope'], 'lafs-backup: --backup: no backup named "nope" (list shows the backups in the entry cache)'],
      // An option given without its value is a usage error, never an internal one.
      [['--size'], 'lafs-backup: Not enough arguments following: size (see --help)'],
    ] as const) {
      const bad = await runCli([...configArgs(p), 'find', 'x', ...args]);
      expect(bad.code, args.join(' ')).toBe(2);
      expect(bad.stderr).toBe(`${line}\n`);
    }
  });
});

describe('find matches names as they are, not only as printed', () => {
  let p: Project;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { '#draft#': 'd', 'two\nlines': 'n', sub: { '#inner#': 'i' } });
    p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p)).code).toBe(0);
  });

  // Paths were matched in their printed form only, where a name at the top starting with '#'
  // is `\x23…` (the queue file's escaping) and a newline is `\n`: `find '#draft#'` (an editor's
  // autosave) found nothing, while `find '#inner#'` one level down did.
  it("a name starting with '#' at the top, and a newline matched by ?, are found; lines still print the escaped path", async () => {
    const hash = await runCli([...configArgs(p), 'find', '#draft#', '#inner#']);
    expect(hash.code, hash.stderr).toBe(0);
    expect(hash.stdout.trim().split('\n').map((l) => l.split(/ +/).pop()).sort()).toEqual(['\\x23draft#', 'sub/#inner#']);
    const nl = await runCli([...configArgs(p), 'find', 'two?lines']);
    expect(nl.stdout.trim().split('\n').map((l) => l.split(/ +/).pop())).toEqual(['two\\nlines']);
    // The printed form still matches too.
    expect((await runCli([...configArgs(p), 'find', '*nlines'])).stdout).toMatch(/two\\nlines$/m);
  });
});

