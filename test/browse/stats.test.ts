/**
 * `stats` end to end, its figures checked against backups whose contents the test chose: two
 * generations of one series, and a second series that shares a file with it.
 */
import { randomBytes } from 'node:crypto';
import { symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const TEXT = 'compressible text, '.repeat(5000); // 95,000 bytes: stored as xz

describe('stats', () => {
  let p: Project;
  let q: Project;
  let xzSize: number;
  beforeAll(async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    // raw.bin: random, stored raw; text.txt and d/copy.txt: the same contents (one cap, xz); small: a literal cap.
    makeTree(src, { 'raw.bin': randomBytes(6000), 'text.txt': TEXT, small: 'ten bytes!', d: { 'copy.txt': TEXT } });
    symlinkSync('small', join(src, 'l'));
    p = project(dir, src, env.url);
    expect((await backup(p)).code).toBe(0);
    makeTree(src, { 'new.bin': randomBytes(7000) });
    const old = new Date(Date.now() - 3600_000);
    utimesSync(src, old, old);
    expect((await backup(p)).code).toBe(0);
    // Another series in the same cache, holding the same text.
    const other = join(dir, 'other');
    makeTree(other, { 'same.txt': TEXT, 'own.bin': randomBytes(6500) });
    q = project(dir, other, env.url);
    writeFileSync(q.config, `source: {path: '${other}', name: other, queue: {path: '${join(dir, 'q2.txt')}'}, entry_cache: {path: '${p.cache}'}}\ndestination: {url: '${env.url}'}\n`);
    expect((await backup(q)).code).toBe(0);
    const ls = JSON.parse((await runCli([...configArgs(p), 'ls', '--json', 'src@1', 'text.txt'])).stdout);
    xzSize = ls[0].stored_size;
    expect(ls[0]).toMatchObject({ enc: 'xz', size: TEXT.length });
  });

  it('per generation: entries, files, bytes on disk and as stored by encoding, what was new, what it shares, the growth (--json)', async () => {
    // The first generation as an older version recorded it: no run summary (worked out from the trees).
    const db = new Database(p.cache);
    db.prepare('UPDATE backups SET summary = NULL WHERE generation = 1').run();
    db.close();
    const r = await runCli([...configArgs(p), 'stats', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    const [g1, g2, o3] = j.backups;
    expect(g1).toMatchObject({
      name: 'src',
      generation: 1,
      entries: 6,
      files: 4,
      directories: 1,
      symlinks: 1,
      bytes: 6000 + 2 * TEXT.length + 10 + 'small'.length,
      unknown_sizes: 0,
      stored: { bytes: 6000 + 10 + 2 * xzSize, raw: 6010, xz: 2 * xzSize, raw_files: 2, xz_files: 2 },
      // Three distinct contents: the copy is the same cap.
      new: { files: 3, bytes: 6000 + 10 + xzSize },
      shared: { files: 2, bytes: 2 * xzSize },
      growth: null,
      run: null,
    });
    expect(g2).toMatchObject({
      name: 'src',
      generation: 2,
      entries: 7,
      files: 5,
      new: { files: 1, bytes: 7000 },
      growth: { entries: 1, files: 1, bytes: 7000, stored: 7000 },
    });
    // A backup made now records what its run did.
    expect(g2.run).toMatchObject({ generation: 2, files: { uploaded: 1, reused: 4 } });
    expect(o3).toMatchObject({ name: 'other', generation: 3, files: 2, new: { files: 2, bytes: 6500 + xzSize }, shared: { files: 1, bytes: xzSize } });
    expect(j.series).toEqual([
      { name: 'src', generations: 2, distinct: { files: 4, bytes: 6000 + 10 + xzSize + 7000 }, growth: { entries: 1, files: 1, bytes: 7000, stored: 7000 } },
      { name: 'other', generations: 1, distinct: { files: 2, bytes: 6500 + xzSize }, growth: { entries: 0, files: 0, bytes: 0, stored: 0 } },
    ]);
  });

  it('one backup by its cap (off the command line: -), NAME@GENERATION, or NAME; a table in text', async () => {
    const cap = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout).backups.find((b: { generation: number }) => b.generation === 2).cap;
    const one = JSON.parse((await runCli([...configArgs(p), 'stats', '-', '--json'], { input: `${cap}\n` })).stdout);
    expect(one.backups.map((b: { generation: number }) => b.generation)).toEqual([2]);
    // What was new needs the generation before: it is still worked out.
    expect(one.backups[0].new).toEqual({ files: 1, bytes: 7000 });
    const text = await runCli([...configArgs(p), 'stats', 'src']);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^BACKUP +FINISHED +ENTRIES +FILES +ON DISK +STORED +XZ +NEW FILES +NEW +SHARED +GROWTH$/);
    expect(lines[1]).toMatch(/^src@1 .* 6 +4 .* -$/);
    expect(lines[2]).toMatch(/^src@2 .* 7 +5 .* \+6\.84 KiB$/);
    expect(lines[3]).toMatch(/^src: 2 generations, .* stored in all \(4 distinct files\); from the first to the last: \+1 files, \+6\.84 KiB on disk$/);
  });
});
