/**
 * The result file is a file of ours or nothing (issue 24, item 10): never followed through a
 * symlink, never another user's, its mode never changed unless we created it. And a rewrite
 * killed half way leaves no caps lying around for long (issue 25, item 15).
 */
import { chownSync, existsSync, lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { isRoot, makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

function setup(): { p: Project; file: string; dir: string } {
  const dir = tempDir();
  makeTree(join(dir, 'src'), { f: 'f'.repeat(100) });
  const file = join(dir, 'results.txt');
  return { p: project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${file}'}}\n`), file, dir };
}

describe('the result file is ours or nothing', () => {
  it('a symlink put in its place is not followed: the file it points to is untouched; the backup is recorded, exit 1, one line', async () => {
    const { p, file, dir } = setup();
    const victim = join(dir, 'passwd');
    writeFileSync(victim, 'root:x:0:0::/root:/bin/sh\n', { mode: 0o644 });
    symlinkSync(victim, file);
    const r = await backup(p);
    expect(r.code).toBe(1);
    expect(withoutSummary(r.stderr)).toBe(`lafs-backup: the backup is recorded, but its result could not be delivered: destination.result.append_to_file: cannot open ${file}: it is a symbolic link; refusing to follow it\n`);
    expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    expect(lstatSync(file).isSymbolicLink()).toBe(true);
    expect(cacheRows(p.cache, 'SELECT cap FROM backups')).toEqual([{ cap: r.cap }]);

    // cleanup rewrites the file: it refuses the link too, and forgets nothing.
    const c = await runCli([...configArgs(p), 'cleanup', '-'], { input: r.cap });
    expect(c.code).toBe(1);
    expect(c.stderr).toBe(`lafs-backup: destination.result.append_to_file: cannot open ${file}: it is a symbolic link; refusing to follow it\n`);
    expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0::/root:/bin/sh\n');
    expect(lstatSync(file).isSymbolicLink()).toBe(true);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(1);
  });

  it.runIf(isRoot)("another user's file is refused, and left as it was", async () => {
    const { p, file } = setup();
    writeFileSync(file, 'theirs\n', { mode: 0o644 });
    chownSync(file, 65534, 65534);
    const r = await backup(p);
    expect(r.code).toBe(1);
    expect(withoutSummary(r.stderr)).toBe(`lafs-backup: the backup is recorded, but its result could not be delivered: destination.result.append_to_file: ${file} belongs to another user (uid 65534); refusing to use it\n`);
    expect(readFileSync(file, 'utf8')).toBe('theirs\n');
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it('a file of ours that others can read keeps its mode, and the run says so; a new one is made 0600', async () => {
    const { p, file } = setup();
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o640);
    const again = await backup(p);
    expect(again.code, again.stderr).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(withoutSummary(again.stderr)).toMatch(new RegExp(`^.*destination\\.result\\.append_to_file: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} holds caps and others may read it \\(mode 640\\); chmod 600 it`, 'm'));
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});

describe('a rewrite killed half way', () => {
  it('its FILE.tmp-PID (holding caps) is removed by the next run that takes the lock; another user\'s is not touched', async () => {
    const { p, file, dir } = setup();
    const first = await backup(p);
    expect(first.code, first.stderr).toBe(0);
    // What a cleanup SIGKILLed between writing its new file and renaming it leaves behind.
    const left = `${file}.tmp-4242`;
    writeFileSync(left, readFileSync(file), { mode: 0o600 });
    const theirs = `${file}.tmp-4343`;
    writeFileSync(theirs, 'not ours\n');
    if (isRoot) chownSync(theirs, 65534, 65534);
    const other = join(dir, 'results.txt.tmp-notapid');
    writeFileSync(other, 'unrelated\n');
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(left)).toBe(false);
    expect(existsSync(other)).toBe(true);
    if (isRoot) expect(existsSync(theirs)).toBe(true);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);

    // cleanup, the rewriter itself, cleans up after a killed one as well.
    writeFileSync(left, 'caps\n', { mode: 0o600 });
    const c = await runCli([...configArgs(p), 'cleanup', '-'], { input: first.cap });
    expect(c.code, c.stderr).toBe(0);
    expect(existsSync(left)).toBe(false);
    expect(readFileSync(file, 'utf8')).not.toContain(first.cap);
  });
});
