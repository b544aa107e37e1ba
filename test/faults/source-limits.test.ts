/**
 * Limits and permissions around the source: what fails is named as it is. A limit of the
 * process (open files) is the run's problem, never an entry "skipped"; an unreadable source
 * or another user's queue file is said to be that, not something about writing the queue.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { CLI } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { handToUnprivileged, isRoot, makeTree, tempDir, unprivileged, type Spec } from '../support/tree.js';

const env = useGrid();

/** Runs the CLI under `ulimit -n limit` in a child shell. */
function underUlimit(limit: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((ok) => {
    const child = spawn('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      ok({ code, stderr });
    });
  });
}

describe('limits and permissions around the source', () => {
  it('with a low ulimit -n, running out of descriptors on source entries stops the run in one line naming the limit; no entry is "skipped" for it', async () => {
    const dir = tempDir();
    const spec: Spec = { d: {} };
    for (let i = 0; i < 40; i++) (spec.d as Spec)[`f${i}`] = randomBytes(300_000);
    for (let i = 0; i < 10; i++) spec[`e${i}`] = { x: 'x' };
    makeTree(join(dir, 'src'), spec);
    const p = project(dir, join(dir, 'src'), env.url);
    // Where the limit bites depends on what Node itself holds open: every limit from "the
    // program cannot start" to "enough" is tried. Whatever fails, it is never a source entry.
    let named = 0;
    for (let n = 18; n <= 40; n += 2) {
      const r = await underUlimit(n, [...configArgs(p), 'backup']);
      expect(r.stderr, `ulimit -n ${n}`).not.toMatch(/too many open files \(EMFILE\); skipped/);
      expect(r.code, `ulimit -n ${n}: ${r.stderr}`).not.toBe(3);
      const limitLine = new RegExp(`^lafs-backup: reading ".*": too many open files \\(EMFILE\\): this process may have ${n} open \\(ulimit -n\\); raise the limit and run again$`);
      if (limitLine.test(r.stderr.trim())) {
        named++;
        expect(r.code).toBe(1);
      }
    }
    expect(named).toBeGreaterThan(0);
  }, 120_000);

  it('an unreadable source directory is named as that (exit 1), not as a queue file that cannot be written', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const work = join(dir, 'work');
    mkdirSync(work);
    handToUnprivileged(work);
    chmodSync(join(dir, 'src'), 0o000);
    try {
      const r = await backup(project(work, join(dir, 'src'), env.url), [], unprivileged());
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(/^lafs-backup: cannot read the source directory ".*\/src": permission denied \(EACCES\)$/);
    } finally {
      chmodSync(join(dir, 'src'), 0o755);
    }
  });

  it('a filter that could backtrack without bound is refused when the configuration is loaded (exit 2, one line naming the rule): a crafted name cannot stall the walk', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { [`${'a'.repeat(35)}!`]: 'x', keep: 'k' });
    for (const extra of ["filter: ['-(a+)+$']\n", "destination: {encoding: {xz: {path_filter: [[10, '(a|a)*$']]}}}\n"]) {
      const p = project(dir, join(dir, 'src'), env.url, extra);
      const r = await backup(p, [], { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(/^lafs-backup: .*(filter|path_filter)\[0\]: rule ".*" is refused: matching it can take time exponential in the length of the path/);
    }
  }, 70_000);

  it.runIf(isRoot)("another user's queue file is named as unreadable (exit 1), not as something that is not a queue file", async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const work = join(dir, 'work');
    mkdirSync(work);
    handToUnprivileged(work);
    const p = project(work, join(dir, 'src'), env.url);
    writeFileSync(p.queue, '# lafs-backup queue v1\n', { mode: 0o600 });
    chownSync(p.queue, 0, 0);
    const r = await backup(p, [], unprivileged());
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`lafs-backup: cannot read queue file ${p.queue}: permission denied (EACCES)`);
  });
});
