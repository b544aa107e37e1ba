/**
 * Hostile shapes that cost the walk time or memory without end: a "DAG bomb" (every level
 * links the level below twice, so 30 directories stand for 2^30 paths) stops restore, ls -R
 * and diff with one line past the revisit limit; legitimate repetition (every empty directory
 * is one cap, identical subtrees share one) does not count beyond what it produces; and a
 * chain 10,000 directories deep is listed in memory linear in its depth.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configArgs } from '../support/backup.js';
import { DEFAULT_MAX_REVISITED, RevisitBudget } from '../../src/browse/tree.js';
import { CLI, runCli } from '../support/cli.js';
import { EXTERNAL, useGrid } from '../support/grid.js';
import { DIRMETA, handmade, META } from '../support/handmade.js';
import { tempDir } from '../support/tree.js';

const env = useGrid();
/** Too heavy for a shared real gateway (10,000 directories made, or a million listed entries): the embedded grid only. */
const itHeavy = (name: string, fn: () => Promise<void>, timeout: number) =>
  EXTERNAL ? it.skip(`${name} [skipped: builds or lists too much for a shared gateway]`, fn, timeout) : it(name, fn, timeout);
const LIMIT_LINE = /lafs-backup: the backup links directories it already contains so often that more than (\d+) entries were reached again through them \(at "[^"]*"\): a hostile or broken backup, or a very repetitive one; stopped \(--max-revisited N raises the limit\)/;

/** Entries under `dir`, counted (not kept). */
function countEntries(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    n++;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) n += countEntries(p);
  }
  return n;
}

describe('directories linked many times', () => {
  const h = handmade(env);

  /** `levels` directories, each linking the one below as `a` and `b`; the bottom one holds `bottom`. */
  async function bomb(levels: number, bottom: { name: string; cap: string }[]): Promise<string> {
    let cap = await h.c.mkdirImmutable(bottom.map((b) => ({ name: b.name, type: 'filenode' as const, cap: b.cap, metadata: META })));
    for (let i = 0; i < levels; i++) {
      cap = await h.c.mkdirImmutable([
        { name: 'a', type: 'dirnode', cap, metadata: DIRMETA },
        { name: 'b', type: 'dirnode', cap, metadata: DIRMETA },
      ]);
    }
    return cap;
  }

  it('a 30-level DAG bomb: restore, ls -R and diff stop past --max-revisited with one line (exit 1), having produced about that much', async () => {
    const one = await h.c.putFile(() => Buffer.from('one '.repeat(30)));
    const two = await h.c.putFile(() => Buffer.from('two '.repeat(30)));
    const root = await bomb(30, [{ name: 'x', cap: one }]);
    const other = await bomb(30, [{ name: 'x', cap: two }]);

    const dest = join(tempDir(), 'dest');
    const r = await runCli([...configArgs(h.p), 'restore', root, dest, '--max-revisited', '500'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(LIMIT_LINE);
    // Fresh: 30 directories and a file; then no more than the limit (and a listing) again.
    expect(countEntries(dest)).toBeLessThan(600);

    const ls = await runCli([...configArgs(h.p), 'ls', '-R', root, '--max-revisited', '500'], { timeoutMs: 60_000 });
    expect(ls.code, ls.stderr).toBe(1);
    expect(ls.stderr).toMatch(LIMIT_LINE);
    expect(ls.stdout.trim().split('\n').length).toBeLessThan(600);

    const diff = await runCli([...configArgs(h.p), 'diff', root, other, '--max-revisited', '500'], { timeoutMs: 60_000 });
    expect(diff.code, diff.stderr).toBe(1);
    expect(diff.stderr).toMatch(LIMIT_LINE);
    expect(diff.stdout.trim().split('\n').length).toBeLessThan(600);
  }, 180_000);

  it('the default limit is a million entries, the one ls, restore, diff, find, dump and stats use without the flag', async () => {
    // Walking a million entries end to end costs a minute of CI for one constant; the bomb below
    // shows what a limit does, this shows which limit applies without the flag.
    expect(DEFAULT_MAX_REVISITED).toBe(1_000_000);
    expect(RevisitBudget.fromFlag(undefined).limit).toBe(1_000_000);
    const help = await runCli(['ls', '--help']);
    expect(help.stdout).toMatch(/default\s+1000000/);
  });

  itHeavy('ls -R of a bomb over a wide directory stops right after the limit, with what was found before it all out', async () => {
    const file = await h.c.putFile(() => Buffer.from('the same file '.repeat(10)));
    const bottom = Array.from({ length: 10_000 }, (_, i) => ({ name: `f${String(i).padStart(5, '0')}`, cap: file }));
    // 2^3 = 8 copies of 10,000 entries: 80,000 paths.
    const root = await bomb(3, bottom);
    let lines = 0;
    let stderr = '';
    const code = await new Promise<number | null>((ok) => {
      const child = spawn(process.execPath, [CLI, ...configArgs(h.p), 'ls', '-R', '--max-revisited', '50000', root], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => {
        for (const b of d) if (b === 0x0a) lines++;
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', ok);
    });
    expect(code, stderr).toBe(1);
    expect(stderr.match(LIMIT_LINE)?.[1]).toBe('50000');
    // What was found before the limit is all out: the first walk of each directory (3 levels of
    // two and the 10,000 files), then listings reached again up to the limit; not the one past it.
    expect(lines).toBeGreaterThan(50_000);
    expect(lines).toBeLessThanOrEqual(50_000 + 6 + 10_000);
  }, 120_000);

  it('repetition a real backup has does not trip it: empty directories (one cap) cost nothing, a copied subtree costs what it holds', async () => {
    const files = await Promise.all(Array.from({ length: 100 }, (_, i) => h.c.putFile(() => Buffer.from(`file ${i} `.repeat(10)))));
    const sub = await h.c.mkdirImmutable(files.map((cap, i) => ({ name: `f${i}`, type: 'filenode' as const, cap, metadata: META })));
    // A project: three subdirectories of the same 100 files (each a re-visit of `sub`: 200 entries again)…
    const project = await h.c.mkdirImmutable(['s1', 's2', 's3'].map((name) => ({ name, type: 'dirnode' as const, cap: sub, metadata: DIRMETA })));
    const empty = await h.c.mkdirImmutable([]);
    expect(empty).toMatch(/^URI:DIR2-LIT:/);
    // …its copy (3 + 300 entries again), and 500 empty directories (one cap, nothing in it).
    const root = await h.c.mkdirImmutable([
      { name: 'project', type: 'dirnode', cap: project, metadata: DIRMETA },
      { name: 'project-copy', type: 'dirnode', cap: project, metadata: DIRMETA },
      ...Array.from({ length: 500 }, (_, i) => ({ name: `empty${i}`, type: 'dirnode' as const, cap: empty, metadata: DIRMETA })),
    ]);
    const again = 200 + 303;
    for (const [limit, code] of [
      [again, 0],
      [again - 1, 1],
    ] as const) {
      const flag = ['--max-revisited', String(limit)];
      const dest = join(tempDir(), 'dest');
      const r = await runCli([...configArgs(h.p), 'restore', root, dest, ...flag], { timeoutMs: 60_000 });
      expect(r.code, `restore, limit ${limit}: ${r.stderr}`).toBe(code);
      const ls = await runCli([...configArgs(h.p), 'ls', '-R', root, ...flag], { timeoutMs: 60_000 });
      expect(ls.code, `ls, limit ${limit}: ${ls.stderr}`).toBe(code);
      if (code === 0) {
        expect(countEntries(dest)).toBe(2 + 2 * 3 * (1 + 100) + 500);
        expect(ls.stdout.trim().split('\n')).toHaveLength(2 + 2 * 3 * (1 + 100) + 500);
        // diff of the backup and its restore walks the same directories.
        const diff = await runCli([...configArgs(h.p), 'diff', root, dest, ...flag], { timeoutMs: 60_000 });
        expect(diff.code, diff.stderr).toBe(0);
      } else {
        expect(r.stderr).toMatch(LIMIT_LINE);
        expect(ls.stderr).toMatch(LIMIT_LINE);
      }
    }
    const bad = await runCli([...configArgs(h.p), 'ls', root, '--max-revisited', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-revisited: give a whole number of entries/);
  }, 120_000);

  itHeavy('ls -R of a chain 10,000 directories deep runs in a 64 MB heap (memory linear in the depth)', async () => {
    const DEPTH = 10_000;
    const leaf = await h.c.putFile(() => Buffer.from('at the bottom '.repeat(8)));
    let cap = await h.c.mkdirImmutable([{ name: 'leaf.txt', type: 'filenode', cap: leaf, metadata: META }]);
    for (let i = 0; i < DEPTH - 1; i++) cap = await h.c.mkdirImmutable([{ name: 'd', type: 'dirnode', cap, metadata: DIRMETA }]);
    let lines = 0;
    let last = '';
    let stderr = '';
    const code = await new Promise<number | null>((ok) => {
      const child = spawn(process.execPath, ['--max-old-space-size=64', CLI, ...configArgs(h.p), 'ls', '-R', cap], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (d: Buffer) => {
        for (const b of d) if (b === 0x0a) lines++;
        last = (last + d.toString('latin1')).slice(-40_100);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString().slice(0, 2000)));
      child.on('close', ok);
    });
    expect(code, stderr).toBe(0);
    expect(lines).toBe(DEPTH);
    expect(last.trimEnd().endsWith(` ${'d/'.repeat(DEPTH - 1)}leaf.txt`)).toBe(true);
  }, 180_000);
});
