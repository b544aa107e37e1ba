/**
 * Hooks and the paths they are given: like every path in a configuration file, a hook's
 * program is taken relative to that file, and the hook runs in that file's directory — so the
 * same file works from cron (cwd $HOME or /) as from the shell it was written in.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, project } from '../support/backup.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

describe('hook paths', () => {
  it("a relative hook program is found from any working directory: resolved against its file's directory, where each hook runs; a bare name is looked up in PATH", async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100) });
    const etc = join(dir, 'etc');
    mkdirSync(join(etc, 'bin'), { recursive: true });
    // Writes its working directory into the file named by its argument (a relative path).
    writeFileSync(join(etc, 'bin', 'record'), '#!/bin/sh\npwd > "$1"\n');
    chmodSync(join(etc, 'bin', 'record'), 0o755);
    const p = project(dir, join(dir, 'src'), env.url);
    const hooks = join(etc, 'hooks.yaml');
    writeFileSync(hooks, "hooks:\n  before_backup: ['./bin/record', 'before.txt']\n  after_backup: './bin/record after.txt && sh -c \"pwd > bare.txt\"'\n");
    p.extra.push(hooks);
    for (const cwd of ['/', join(dir, 'src')]) {
      const r = await backup(p, [], { cwd });
      expect(r.code, `from ${cwd}: ${r.stderr}`).toBe(0);
      for (const f of ['before.txt', 'after.txt', 'bare.txt']) expect(readFileSync(join(etc, f), 'utf8'), `${f} from ${cwd}`).toBe(`${etc}\n`);
    }
    // A bare program name is still looked up in PATH (and runs in the same directory).
    writeFileSync(hooks, "hooks: {before_backup: ['sh', '-c', 'pwd > bare-argv.txt']}\n");
    const r = await backup(p, [], { cwd: '/' });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(etc, 'bare-argv.txt'), 'utf8')).toBe(`${etc}\n`);
  });
});
