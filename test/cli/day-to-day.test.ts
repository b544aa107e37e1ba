/**
 * Running it day to day: progress on a terminal (and never on pipes), the summary line and
 * `backup --json`, hooks, exit codes, completion, and the README kept in step with the code.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFile, configReference, REFERENCE_BEGIN, REFERENCE_END } from '../../src/config/reference.js';
import { EXIT } from '../../src/errors.js';
import { EXIT_TABLE } from '../../src/main.js';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { CLI, runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const README = join(import.meta.dirname, '..', '..', 'README.md');
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the CLI with a pseudo-terminal for stdin, stdout and stderr (util-linux `script`), as a
 * person at a terminal would. The terminal merges both streams into `output`.
 */
function runInPty(args: string[]): Promise<{ code: number; output: string }> {
  const cmd = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Promise((ok, fail) => {
    const child = execFile('script', ['-q', '-e', '-c', `stty cols 120; exec ${cmd}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 }, (err, stdout) => {
      if (err && typeof err.code !== 'number') fail(err);
      else ok({ code: err ? Number(err.code) : 0, output: stdout });
    });
    child.stdin?.end();
  });
}

/** A tree with compressible and incompressible files, a link and a subdirectory. */
function sample(root: string): void {
  makeTree(root, {
    'notes.txt': 'all work and no play\n'.repeat(2000),
    'noise.bin': Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 7919) % 251)),
    sub: { 'a.txt': 'a', 'b.txt': 'b' },
    link: { symlink: 'notes.txt' },
  });
}

function fresh(extra = ''): Project {
  const dir = tempDir();
  sample(join(dir, 'src'));
  return project(dir, join(dir, 'src'), env.url, extra);
}

describe('progress', () => {
  it('appears on a terminal for backup, restore and check, and not at all on pipes', async () => {
    const p = fresh();
    const tty = await runInPty([...configArgs(p), 'backup']);
    expect(tty.code).toBe(0);
    expect(tty.output).toMatch(/scanning \d+ entries/);
    expect(tty.output).toMatch(/uploading \d+% \[[#-]{10}\] \d+\/7 entries, [\d.]+ \w+\/[\d.]+ \w+/);
    // The last drawing, before the line is cleared, shows everything done.
    expect(tty.output).toMatch(/uploading 100% \[#{10}\] 7\/7 entries/);
    // The terminal gets the line redrawn in place, then cleared before the cap is printed.
    expect(tty.output).toContain('\x1b[2K');
    const cap = /URI:DIR2-CHK:\S+/.exec(tty.output)![0];

    const restored = await runInPty([...configArgs(p), 'restore', cap, join(p.dir, 'back')]);
    expect(restored.code).toBe(0);
    expect(restored.output).toMatch(/restoring 100% \[#{10}\] 6\/6 entries/);
    const checked = await runInPty([...configArgs(p), 'check', cap]);
    expect(checked.code).toBe(0);
    expect(checked.output).toMatch(/checking "[^"]+" \(1\/1\) 100% \[#{10}\] 7\/7 nodes/);

    // The same commands with pipes (cron): not a trace of it.
    for (const args of [['backup', '-f'], ['restore', cap, join(p.dir, 'back2')], ['check', cap]]) {
      const r = await runCli([...configArgs(p), ...args]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/scanning|uploading|restoring|checking|\x1b\[/);
      expect(r.stdout).not.toMatch(/scanning|uploading|restoring|checking|\x1b\[/);
    }
  });

  it('--progress forces plain lines onto a pipe; --no-progress hides it on a terminal', async () => {
    const p = fresh();
    const forced = await runCli([...configArgs(p), 'backup', '--progress']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/^uploading \d+% \[[#-]{10}\] \d+\/7 entries/m);
    expect(forced.stderr).not.toContain('\x1b[');
    expect(forced.stdout.trim()).toMatch(/^URI:DIR2-CHK:\S+$/);
    const hidden = await runInPty([...configArgs(p), 'backup', '--no-progress', '-f']);
    expect(hidden.code).toBe(0);
    expect(hidden.output).not.toMatch(/scanning|uploading/);
  });
});

describe('the summary and backup --json', () => {
  it('one summary line on stderr at the default level, with what was uploaded and reused', async () => {
    const p = fresh();
    const first = await backup(p);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^lafs-backup: backup "src" generation 1 done in [\d.]+ s: files 4 uploaded \(\d xz(, raw [^)]*)?\) \/ 0 reused; symlinks 1 uploaded \/ 0 reused; directories 2 created \/ 0 reused; .* read, .* sent \(xz saved .*, \d+%\)$/);
    const again = await backup(p);
    expect(again.stderr).toMatch(/generation 2 done .*files 0 uploaded \/ 4 reused; symlinks 0 uploaded \/ 1 reused; directories 0 created \/ 2 reused; 0 B read, 0 B sent$/m);
    const quiet = await backup(p, ['-q']);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });

  it('--json prints one object with the root cap and the counts, and nothing else on stdout', async () => {
    const p = fresh();
    writeFileSync(join(p.source, 'sub', 'new.txt'), 'x'.repeat(10_000));
    utimesSync(join(p.source, 'sub', 'new.txt'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const r = await backup(p, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    expect(j.outcome).toBe('success');
    expect(j.name).toBe('src');
    expect(j.source).toBe(p.source);
    expect(j.generation).toBe(1);
    expect(j.cap).toMatch(/^URI:DIR2-CHK:/);
    expect(j.queue).toEqual({ path: p.queue, rebuilt: true, entries: 8 });
    expect(j.files).toEqual({ uploaded: 5, reused: 0, deduplicated: 0, not_cached: 0 });
    expect(j.stored.xz + j.stored.raw_by_name + j.stored.raw_by_size + j.stored.raw_by_content + j.stored.raw).toBe(5);
    expect(j.symlinks).toEqual({ uploaded: 1, reused: 0 });
    expect(j.directories).toEqual({ created: 2, reused: 0 });
    const sizes = 2000 * 21 + 9000 + 1 + 1 + 10_000;
    expect(j.bytes.read).toBe(sizes);
    // notes.txt and new.txt are compressed (over min_size), and shrink a lot.
    expect(j.bytes.xz_in).toBe(2000 * 21 + 9000 + 10_000);
    expect(j.bytes.xz_saved).toBe(j.bytes.xz_in - j.bytes.xz_out);
    expect(j.bytes.xz_saved).toBeGreaterThan(40_000);
    expect(j.bytes.sent).toBe(j.bytes.xz_out + 2 + 'notes.txt'.length);
    expect(j.skipped).toEqual({ unreadable: 0, vanished: 0, changed_type: 0, special: 0, excluded: 0 });
    expect(j.elapsed_seconds).toBeGreaterThan(0);
    // The cap is the one the cache recorded.
    const listed = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout);
    expect(listed.backups[0].cap).toBe(j.cap);

    const q = await backup(p, ['--queue-only', '--json']);
    const jq = JSON.parse(q.stdout);
    expect(jq).toMatchObject({ cap: null, generation: null, queue: { rebuilt: true, entries: 8 } });
  });

  it('an incomplete backup says what was skipped and why, and exits 3', async () => {
    const p = fresh("filter: ['-/noise\\.bin$']\n");
    const fifo = join(p.source, 'pipe');
    await new Promise((ok, fail) => execFile('mkfifo', [fifo], (e) => (e ? fail(e) : ok(null))));
    await backup(p, ['--queue-only']);
    // Vanishes between the phases.
    rmSync(join(p.source, 'sub', 'a.txt'));
    const r = await backup(p, ['--reuse-queue', '--json']);
    expect(r.code).toBe(EXIT.INCOMPLETE);
    const j = JSON.parse(r.stdout);
    expect(j.outcome).toBe('incomplete');
    expect(j.skipped.vanished).toBe(1);
    const line = await backup(p, ['-f']);
    expect(line.code).toBe(0);
    expect(line.stderr).toMatch(/1 entry skipped \(1 special file\), 1 excluded by filters$/m);
  });
});

describe('hooks', () => {
  const dump = (file: string) => ['sh', '-c', `env | grep ^LAFS_BACKUP_ | grep -v CAP= | sort > ${quote(file)}; echo "cap=\${LAFS_BACKUP_CAP:+set}" >> ${quote(file)}`];
  const vars = (file: string) => Object.fromEntries(readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));

  it('run around the backup with what they need in the environment; a list runs without a shell', async () => {
    const dir = tempDir();
    const before = join(dir, 'before.env');
    const after = join(dir, 'after.env');
    const argvFile = join(dir, 'argv');
    // A list is an argv: `$HOME; false` reaches the program as one literal argument.
    const p = fresh(
      `hooks:\n  before_backup: ${JSON.stringify([...dump(before)])}\n  after_backup: ${JSON.stringify(['sh', '-c', `printf '%s\\n' "$1" > ${quote(argvFile)}; ${dump(after)[2]}`, 'hook', '$HOME; false'])}\n`,
    );
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    expect(vars(before)).toEqual({ LAFS_BACKUP_HOOK: 'before_backup', LAFS_BACKUP_SOURCE: p.source, LAFS_BACKUP_NAME: 'src', LAFS_BACKUP_GENERATION: '1', cap: '' });
    expect(vars(after)).toEqual({
      LAFS_BACKUP_HOOK: 'after_backup',
      LAFS_BACKUP_SOURCE: p.source,
      LAFS_BACKUP_NAME: 'src',
      LAFS_BACKUP_GENERATION: '1',
      LAFS_BACKUP_OUTCOME: 'success',
      LAFS_BACKUP_EXIT_CODE: '0',
      cap: 'set',
    });
    expect(readFileSync(argvFile, 'utf8')).toBe('$HOME; false\n');
  });

  it('a string runs with /bin/sh; the before hook may make the snapshot a glob source then picks', async () => {
    const dir = tempDir();
    const snaps = join(dir, 'snaps');
    mkdirSync(join(snaps, 'snap.1'), { recursive: true });
    writeFileSync(join(snaps, 'snap.1', 'old'), 'old');
    const p = project(dir, join(snaps, 'snap.*'), env.url, `hooks: {before_backup: 'mkdir ${snaps}/snap.2 && echo fresh > ${snaps}/snap.2/new'}\n`);
    const r = await backup(p, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.source).toBe(join(snaps, 'snap.2'));
    const ls = await runCli([...configArgs(p), 'ls', j.cap]);
    expect(ls.stdout).toMatch(/ new$/m);
    expect(ls.stdout).not.toMatch(/ old$/m);
  });

  itEmbedded('a failing before hook aborts with exit 6 and its code named; nothing is uploaded; after still runs', async () => {
    const dir = tempDir();
    const after = join(dir, 'after.env');
    const p = fresh(`hooks:\n  before_backup: ['sh', '-c', 'exit 3']\n  after_backup: ${JSON.stringify(dump(after))}\n`);
    env.grid.resetStats();
    const r = await backup(p);
    expect(r.code).toBe(EXIT.HOOK);
    expect(r.stderr.trim()).toBe('lafs-backup: hooks.before_backup (sh) exited with code 3');
    expect(r.stdout).toBe('');
    expect(env.grid.stats.put_uri).toBe(0);
    expect(existsSync(p.queue)).toBe(false);
    expect(vars(after)).toMatchObject({ LAFS_BACKUP_OUTCOME: 'aborted', LAFS_BACKUP_EXIT_CODE: String(EXIT.HOOK), cap: '' });
    const listed = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout);
    expect(listed.backups).toEqual([]);
  });

  it('a hook past hooks.timeout is stopped (exit 6); a failing after hook keeps the finished backup', async () => {
    const slow = fresh(`hooks: {before_backup: ['sleep', '30'], timeout: 0.3}\n`);
    const started = Date.now();
    const r = await backup(slow);
    expect(r.code).toBe(EXIT.HOOK);
    expect(r.stderr).toMatch(/^lafs-backup: hooks\.before_backup \(sleep\) ran longer than hooks\.timeout \(0\.3 s\) and was stopped$/m);
    expect(Date.now() - started).toBeLessThan(10_000);

    const failingAfter = fresh(`hooks: {after_backup: 'exit 9'}\n`);
    const a = await backup(failingAfter);
    expect(a.code).toBe(EXIT.HOOK);
    expect(a.stdout).toMatch(/^URI:DIR2-CHK:/);
    expect(a.stderr).toMatch(/^lafs-backup: hooks\.after_backup \(sh -c\) exited with code 9$/m);
    const listed = JSON.parse((await runCli([...configArgs(failingAfter), 'list', '--json'])).stdout);
    expect(listed.backups).toHaveLength(1);

    const missing = fresh(`hooks: {before_backup: ['/nonexistent/prog']}\n`);
    const m = await backup(missing);
    expect(m.code).toBe(EXIT.HOOK);
    expect(m.stderr.trim()).toBe('lafs-backup: hooks.before_backup (prog) could not be started: no such program');
  });
});

describe('exit codes, completion and the README', () => {
  it('the README has the exit-code table of --help, and the table covers every code', async () => {
    const help = await runCli(['--help']);
    expect(help.stdout).toContain(EXIT_TABLE.split('\n')[1]);
    const readme = readFileSync(README, 'utf8');
    for (const line of EXIT_TABLE.split('\n').slice(1)) {
      const [, code, meaning] = /^\s+(\d+)\s+(.*)$/.exec(line)!;
      expect(readme, `README row for exit code ${code}`).toContain(`| ${code} | ${meaning} |`);
    }
    const documented = EXIT_TABLE.split('\n').slice(1).map((l) => Number(/\d+/.exec(l)![0]));
    expect(documented.sort((a, b) => a - b)).toEqual(Object.values(EXIT).sort((a, b) => a - b));
  });

  it("the README's configuration reference and config/default.yaml are config/schema.json's, key by key", () => {
    const readme = readFileSync(README, 'utf8');
    const a = readme.indexOf(REFERENCE_BEGIN);
    const b = readme.indexOf(REFERENCE_END);
    expect(a, 'reference markers in README.md').toBeGreaterThan(0);
    expect(readme.slice(a + REFERENCE_BEGIN.length, b).trim(), 'README.md is stale: run `npm run docs`').toBe(configReference());
    const yaml = readFileSync(join(import.meta.dirname, '..', '..', 'config', 'default.yaml'), 'utf8');
    expect(yaml, 'config/default.yaml is stale: run `npm run docs`').toBe(configFile());
    // Each row is the schema's default and description.
    const schema = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'config', 'schema.json'), 'utf8'));
    const concurrency = schema.properties.operation.properties.concurrency;
    expect(configReference()).toContain(`| \`operation.concurrency\` | \`${concurrency.default}\` | ${concurrency.description} |`);
  });

  it('every test the README\'s "what happens when" table cites exists, by file and name', () => {
    const readme = readFileSync(README, 'utf8');
    const table = readme.slice(readme.indexOf('## What happens when'), readme.indexOf('## Decisions'));
    const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Situation') && !l.startsWith('| ---'));
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const row of rows) {
      const proof = row.split(' | ').pop()!;
      const cites = [...proof.matchAll(/`(test\/[^`]+)`((?:[^`]*?"[^"]+")*)/g)];
      expect(cites.length, row).toBeGreaterThan(0);
      for (const [, file, names] of cites) {
        const source = readFileSync(join(import.meta.dirname, '..', '..', file!), 'utf8');
        for (const [, name] of names!.matchAll(/"([^"]+)"/g)) expect(source, `${file} cites "${name}"`).toContain(name);
      }
    }
  });

  it('shell completion comes from yargs: a script, and completions of commands and flags', async () => {
    const script = await runCli(['completion']);
    expect(script.code).toBe(0);
    expect(script.stdout).toContain('complete -o bashdefault -o default -F _lafs-backup_yargs_completions lafs-backup');
    const commands = await runCli(['--get-yargs-completions', 'lafs-backup', '']);
    for (const c of ['backup', 'restore', 'ls', 'diff', 'list', 'check', 'cleanup', 'dump-config', 'grid']) expect(commands.stdout.split('\n')).toContain(c);
    const flags = await runCli(['--get-yargs-completions', 'lafs-backup', 'backup', '--']);
    expect(flags.stdout.split('\n')).toEqual(expect.arrayContaining(['--queue-only', '--reuse-queue', '--json', '--quiet', '--progress']));
  });
});
