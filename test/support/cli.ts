/** Runs the built CLI (dist/cli.js) as a user would, in a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { watchPeak } from './peak.js';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'lafs-backup.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command's peak RSS in MiB, when asked for (`peak`). */
  peakMiB?: number;
}

export interface CliOptions {
  /** Another build of the CLI to run (default: this checkout's dist/cli.js). */
  cli?: string;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
  /** Run as this uid/gid (tests of permission-denied paths when the suite runs as root). */
  uid?: number;
  gid?: number;
  /** Watch the command's peak RSS (support/peak.ts) and give it as `peakMiB`. */
  peak?: boolean;
}

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run `npm run build` (npm test does it first)');
}

/**
 * Where a command looks when not told (config/locate.ts), kept inside this test process's own
 * temporary directory: the machine's ~/.config/lafs-backup, /var/lib/lafs-backup (the suite
 * runs as root) and a LAFS_BACKUP_* variable of the shell never reach a test. A test that
 * means them gives its own env (an empty value counts as unset).
 */
const LOOKUP_DIR = mkdtempSync(join(tmpdir(), 'lb-lookup-'));
const LOOKUP_ENV = { XDG_CONFIG_HOME: join(LOOKUP_DIR, 'config'), XDG_STATE_HOME: join(LOOKUP_DIR, 'state') };

function childEnv(extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...LOOKUP_ENV };
  delete env.LAFS_BACKUP_CONFIG;
  delete env.LAFS_BACKUP_GATEWAY;
  return { ...env, ...extra };
}

export function spawnCli(args: string[], opts: CliOptions = {}): ChildProcess {
  if (!opts.cli) assertBuilt();
  return spawn(process.execPath, [opts.cli ?? CLI, ...args], {
    cwd: opts.cwd,
    env: childEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, opts);
  const peak = opts.peak ? watchPeak(child) : undefined;
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((ok, fail) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const peakMiB = peak?.stop();
      // Every CLI run in the suite is a secrets audit: stderr carries logs and error lines,
      // and no cap may ever appear there.
      if (/uri(:|%3a)[a-z0-9-]+(:|%3a)[a-z2-7]{5,}/i.test(stderr)) fail(new Error(`a cap reached stderr of lafs-backup ${args.join(' ')}:\n${stderr}`));
      else ok({ code, signal, stdout, stderr, ...(peakMiB === undefined ? {} : { peakMiB }) });
    });
  });
}

/** Waits until the child printed a line matching `re` on stdout; returns the match. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  return new Promise((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`no line matching ${re} within ${timeoutMs} ms: ${buf}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(timer);
        ok(m);
      }
    });
  });
}

const SUMMARY =
  /^lafs-backup: (backup "[^"\n]*" generation \d+ (done|INCOMPLETE) in [\d.]+ s: |queue "[^"\n]*" written in [\d.]+ s: |restore (--dry-run )?of "[^"\n]*" into "[^"\n]*" (done|INCOMPLETE) in [\d.]+ s: |check of \d+ backups? done in [\d.]+ s: ).*\n?/m;

/** stderr without the one summary line a backup, restore or check ends with: what is left are warnings and errors. */
export function withoutSummary(stderr: string): string {
  return stderr.replace(SUMMARY, '');
}

/** What a run of the CLI should have done: its exit code (default 0), and stdout and stderr when given. */
export interface Expected {
  code?: number | null;
  /** A string: exactly this; a RegExp: something matching it. */
  stdout?: string | RegExp;
  stderr?: string | RegExp;
}

function expectText(what: string, actual: string, want: string | RegExp | undefined): void {
  if (want === undefined) return;
  if (typeof want === 'string') expect(actual, what).toBe(want);
  else expect(actual, what).toMatch(want);
}

/**
 * Asserts what a run of the CLI did (a failed exit code shows its stderr, which says why) and
 * hands the run back: `const r = expectRun(await backup(p))`.
 */
export function expectRun<R extends CliResult>(r: R, e: Expected = {}): R {
  expect(r.code, `exit code; stderr:\n${r.stderr}`).toBe(e.code === undefined ? 0 : e.code);
  expectText('stdout', r.stdout, e.stdout);
  expectText('stderr', r.stderr, e.stderr);
  return r;
}

/** Runs the CLI and asserts what it did (expectRun). */
export async function expectCli(args: string[], e: Expected = {}, opts: CliOptions = {}): Promise<CliResult> {
  return expectRun(await runCli(args, opts), e);
}
