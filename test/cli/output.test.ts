/**
 * Output a shell user can trust: a reader that goes away (`| head`) ends a command quietly with
 * exit 141, as coreutils end; a stdout that cannot be written is one line, exit 1; a backup
 * whose cap cannot be printed stays recorded and says where the cap is. And `--version`.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { CLI, runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();
const ROOT = join(import.meta.dirname, '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI with stdout on /dev/full, or on a pipe whose reader closed before it wrote. */
function runWithStdout(args: string[], stdout: 'full' | 'closed'): Promise<Run> {
  const fd = stdout === 'full' ? openSync('/dev/full', 'w') : undefined;
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', fd ?? 'pipe', 'pipe'] });
  if (fd !== undefined) closeSync(fd);
  // Closed at once: the child is still starting, so its first write meets no reader (EPIPE).
  child.stdout?.destroy();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((ok) => child.on('close', (code) => ok({ code, stdout: '', stderr })));
}

/** `lafs-backup ARGS | READER` in bash; the exit code is lafs-backup's (PIPESTATUS). */
function pipeline(args: string[], reader: string): Promise<Run> {
  return new Promise((ok, fail) => {
    execFile('bash', ['-c', `"$@" | ${reader}; exit "\${PIPESTATUS[0]}"`, 'bash', process.execPath, CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') fail(err);
      else ok({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

describe('stdout', () => {
  let p: Project;
  let cap: string;
  beforeAll(async () => {
    const dir = tempDir();
    // ~2,400 entries: `ls -R` prints far more than a pipe holds (64 KiB), so `head` leaves mid-way.
    const tree: Spec = {};
    for (let d = 0; d < 40; d++) {
      const files: Spec = {};
      for (let f = 0; f < 60; f++) files[`a-file-with-a-rather-long-name-${f}.txt`] = `${d}/${f}`;
      tree[`directory-${d}`] = files;
    }
    makeTree(join(dir, 'src'), tree);
    mkdirSync(join(dir, 'empty'));
    p = project(dir, join(dir, 'src'), env.url);
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    cap = r.cap;
  }, 120_000);

  it('a closed pipe ends ls -R, ls -R --json, list, restore --dry-run, diff and dump-config quietly: exit 141, nothing on stderr', async () => {
    for (const [reader, args] of [
      ['head -n 2', ['ls', '-R', cap]],
      ['head -c 100', ['ls', '-R', '--json', cap]],
    ] as const) {
      const r = await pipeline([...configArgs(p), ...args], reader);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(141);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
    for (const args of [
      ['ls', '-R', cap],
      ['list'],
      ['list', '--json'],
      ['restore', '--dry-run', cap, join(p.dir, 'restored')],
      ['diff', cap, join(p.dir, 'empty')],
      ['diff', '--json', cap, join(p.dir, 'empty')],
      ['dump-config'],
    ]) {
      const r = await runWithStdout([...configArgs(p), ...args], 'closed');
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(141);
    }
  });

  it('a full stdout (/dev/full) is one line, exit 1', async () => {
    for (const args of [['ls', '-R', cap], ['list'], ['diff', '--json', cap, join(p.dir, 'empty')], ['dump-config']]) {
      const r = await runWithStdout([...configArgs(p), ...args], 'full');
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toBe('lafs-backup: cannot write to stdout: no space left on device (ENOSPC)\n');
    }
  });

  it('a backup whose cap cannot be printed (full or closed stdout) stays recorded: exit 1, one line saying where the cap is', async () => {
    for (const [i, stdout] of (['full', 'closed'] as const).entries()) {
      const dir = tempDir();
      makeTree(join(dir, 'src'), { a: 'a'.repeat(100), d: { b: 'b'.repeat(200) } });
      const q = project(dir, join(dir, 'src'), env.url);
      const r = await runWithStdout([...configArgs(q), 'backup', ...(i ? ['--json'] : [])], stdout);
      expect(r.code, r.stderr).toBe(1);
      const why = stdout === 'full' ? 'no space left on device \\(ENOSPC\\)' : 'stdout was closed by its reader \\(EPIPE\\)';
      expect(r.stderr).toMatch(new RegExp(`^lafs-backup: the backup is recorded, but its root cap could not be written to stdout: ${why}; it is kept in the entry cache \\(\`lafs-backup list\` shows it\\)$`, 'm'));
      expect(r.stderr).not.toMatch(/Unhandled|internal error|at .*\.js:\d+/);
      const listed = JSON.parse((await runCli([...configArgs(q), 'list', '--json'])).stdout) as { backups: { cap: string }[] };
      expect(listed.backups).toHaveLength(1);
      // The next run finds everything in the cache: the same root cap, printed this time.
      const again = await backup(q);
      expect(again.code, again.stderr).toBe(0);
      expect(again.cap).toBe(listed.backups[0]!.cap);
    }
  });
});

describe('--version', () => {
  it("prints the package's version from any directory", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const cwd of ['/', tempDir()]) {
      const r = await runCli(['--version'], { cwd });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
    }
  });
});
