/**
 * A strict command line: an unknown option, a missing or extra positional is a usage error
 * (exit 2, one line, a hint to --help) raised before the command does anything — no lock, no
 * request, no file written, the cache byte-identical.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

/** Every file below `dir` with its bytes. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const path = join(e.parentPath, e.name);
      out.set(path, readFileSync(path).toString('base64'));
    } else out.set(join(e.parentPath, e.name), e.isDirectory() ? 'dir' : 'other');
  }
  return out;
}

describe('a strict command line', () => {
  let p: Project;
  let cap: string;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), d: { b: 'b'.repeat(200) } });
    p = project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${join(dir, 'results.txt')}'}}\n`);
    const r = await backup(p);
    expect(r.code).toBe(0);
    cap = r.cap;
  });

  const dest = () => join(p.dir, 'restored');
  const commands = (): [string, string[]][] => [
    ['backup', ['backup']],
    ['restore', ['restore', cap, dest()]],
    ['ls', ['ls', cap]],
    ['diff', ['diff', cap, cap]],
    ['list', ['list']],
    ['check', ['check']],
    ['cleanup', ['cleanup', '--keep-last', '1']],
    ['dump-config', ['dump-config']],
    ['grid', ['grid', '--port', '0']],
  ];
  const typos = ['--bogus', '--dryrun', '--keep-lats=1'];

  itEmbedded('every command with an unknown option: exit 2, one line, nothing changed, nothing sent', async () => {
    for (const [name, args] of commands()) {
      for (const typo of typos) {
        const before = snapshot(p.dir);
        env.grid.resetStats();
        const r = await runCli([...configArgs(p), ...args, typo], { timeoutMs: 10_000 });
        expect(r.code, `${name} ${typo}: ${r.stderr}`).toBe(2);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
        expect(r.stderr.trim(), name).toMatch(/^lafs-backup: Unknown arguments?: .* \(see --help\)$/);
        expect(snapshot(p.dir), `${name} ${typo} changed files`).toEqual(before);
        expect(Object.values(env.grid.stats).every((v) => v === 0), `${name} ${typo} sent requests: ${JSON.stringify(env.grid.stats)}`).toBe(true);
      }
    }
  });

  it('a required positional missing, or one too many: exit 2, one line, nothing changed', async () => {
    const cases: string[][] = [['restore'], ['restore', cap], ['ls'], ['diff'], ['diff', cap], ['restore', cap, dest(), 'extra'], ['backup', 'src', 'extra'], ['list', 'extra'], ['dump-config', 'extra']];
    for (const args of cases) {
      const before = snapshot(p.dir);
      const r = await runCli([...configArgs(p), ...args], { timeoutMs: 10_000 });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(/^lafs-backup: (Not enough non-option arguments|Unknown argument).* \(see --help\)$/);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(snapshot(p.dir)).toEqual(before);
    }
  });
});
