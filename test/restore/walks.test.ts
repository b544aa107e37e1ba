/**
 * Walks that must not depend on the shape of the tree: a chain of directories deeper than any
 * recursion would survive, cycles on both sides of a diff, and local names that are not UTF-8.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { DIRMETA, handmade, META } from '../support/handmade.js';
import { makeTree, tempDir, writeRaw } from '../support/tree.js';

const env = useGrid();

describe('walks of any shape', () => {
  const h = handmade(env);

  // Making 3,000 directories one after another takes minutes on a real gateway: the embedded grid only.
  itEmbedded('a chain of 3,000 directories: ls -R streams every level and restore makes the deepest file', async () => {
    const DEPTH = 3000;
    const leaf = await h.c.putFile(() => Buffer.from('at the bottom '.repeat(8)));
    let cap = await h.c.mkdirImmutable([{ name: 'leaf.txt', type: 'filenode', cap: leaf, metadata: META }]);
    for (let i = 0; i < DEPTH - 1; i++) cap = await h.c.mkdirImmutable([{ name: 'd', type: 'dirnode', cap, metadata: DIRMETA }]);
    const ls = await runCli([...configArgs(h.p), 'ls', cap, '-R', '--json'], { timeoutMs: 120_000 });
    expect(ls.code, ls.stderr).toBe(0);
    const rows = JSON.parse(ls.stdout) as { path: string; type: string }[];
    expect(rows).toHaveLength(DEPTH);
    expect(rows[rows.length - 1]).toMatchObject({ path: `${'d/'.repeat(DEPTH - 1)}leaf.txt`, type: 'file' });
    const dest = join(tempDir(), 'deep');
    const r = await runCli([...configArgs(h.p), 'restore', cap, dest], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    // The path is past PATH_MAX for the kernel's path lookups (and for sh's cd): a child node
    // walks it a step at a time.
    const walk = `process.chdir(process.argv[1]); for (let i = 0; i < ${DEPTH - 1}; i++) process.chdir('d'); process.stdout.write(require('fs').readFileSync('leaf.txt'))`;
    const bottom = spawnSync(process.execPath, ['-e', walk, dest], { encoding: 'utf8' });
    expect(bottom.stdout).toBe('at the bottom '.repeat(8));
  });

  it('diff stops at a cycle on either side (warning, exit 3) and compares the rest', async () => {
    const file = await h.c.putFile(() => Buffer.from('in a loop '.repeat(10)));
    const loops: string[] = [];
    for (const extra of ['x', 'y']) {
      const loop = await h.c.mkdirMutable();
      await h.c.link(loop, 'file.txt', file);
      await h.c.link(loop, extra, await h.c.putFile(() => Buffer.from(`${extra} `.repeat(40))));
      await h.c.link(loop, 'again', loop);
      loops.push(loop);
    }
    const r = await runCli([...configArgs(h.p), 'diff', loops[0]!, loops[1]!], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/"again\/again" is a directory that contains itself \(a cycle\); not entered again/);
    expect(r.stdout.trim().split('\n')).toEqual(['- again/x', '+ again/y', '- x', '+ y']);
  });

  it('diff against a local directory handles names that are not UTF-8', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { plain: 'p'.repeat(80) });
    writeRaw(src, Buffer.from([0x66, 0xff, 0x0a, 0x67]), 'latin-1 and a newline '.repeat(4));
    const q = project(dir, src, env.url);
    const made = await backup(q);
    expect(made.code, made.stderr).toBe(0);
    const dest = join(dir, 'restored');
    expect((await runCli([...configArgs(q), 'restore', made.cap, dest])).code).toBe(0);
    expect(existsSync(Buffer.concat([Buffer.from(`${dest}/`), Buffer.from([0x66, 0xff, 0x0a, 0x67])]))).toBe(true);
    const same = await runCli([...configArgs(q), 'diff', made.cap, dest]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toBe('');
    writeRaw(dest, Buffer.from([0xfe, 0x41]), 'new');
    const added = await runCli([...configArgs(q), 'diff', made.cap, dest, '--json']);
    expect(added.code, added.stderr).toBe(0);
    const r = JSON.parse(added.stdout) as { added: string[]; removed: string[]; changed: unknown[] };
    expect(r.added).toHaveLength(1);
    expect(r.removed).toEqual([]);
    expect(r.changed).toEqual([]);
  });
});
