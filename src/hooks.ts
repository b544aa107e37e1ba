/**
 * `hooks.before_backup` / `hooks.after_backup`: commands run around a backup (stop a service
 * or dump a database before the copy; restart it, or ship the result, after).
 *
 * A list is an argv and runs without a shell; a string is how you ask for one, and runs with
 * `/bin/sh -c`. Either runs in the directory of the configuration file that set it (where its
 * relative paths point, as every path in that file does; the argv's program is resolved there
 * when loaded, a bare name is looked up in PATH). The hook's stdout and stderr both go to our
 * stderr, so stdout keeps holding only the cap or the JSON summary. What the hook needs to
 * know arrives in LAFS_BACKUP_* environment variables. A hook that runs longer than
 * `hooks.timeout` gets SIGTERM, then SIGKILL five seconds later; a stop request (SIGINT/SIGTERM
 * to us) is passed on to it.
 *
 * Messages name the hook and the program, never the whole command line (it may hold a
 * password) and never a cap.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Hook } from './config/load.js';
import { longTimeout, type LongTimeout } from './core/timers.js';
import { describeErrno, HookError } from './errors.js';
import { log } from './log.js';

export type HookCommand = Hook | null;
export type HookName = 'before_backup' | 'after_backup';

/** How a backup ended, as the after hook is told (LAFS_BACKUP_OUTCOME). */
export type Outcome = 'success' | 'incomplete' | 'failed' | 'interrupted' | 'aborted';

export interface HookVars {
  source: string;
  name: string;
  generation?: number;
  outcome?: Outcome;
  exitCode?: number;
  /** The root cap, for an after hook of a backup that produced one. A secret. */
  cap?: string;
  /** The one-line error of a failed backup (caps already redacted). */
  error?: string;
}

export function hookEnv(hook: HookName, v: HookVars): Record<string, string> {
  const env: Record<string, string> = { LAFS_BACKUP_HOOK: hook, LAFS_BACKUP_SOURCE: v.source, LAFS_BACKUP_NAME: v.name, LAFS_BACKUP_GENERATION: v.generation === undefined ? '' : String(v.generation) };
  if (v.outcome) env.LAFS_BACKUP_OUTCOME = v.outcome;
  if (v.exitCode !== undefined) env.LAFS_BACKUP_EXIT_CODE = String(v.exitCode);
  if (v.cap) env.LAFS_BACKUP_CAP = v.cap;
  if (v.error) env.LAFS_BACKUP_ERROR = v.error;
  return env;
}

function argvOf(command: string | string[]): { file: string; args: string[]; shown: string } {
  if (typeof command === 'string') return { file: '/bin/sh', args: ['-c', command], shown: 'sh -c' };
  return { file: command[0]!, args: command.slice(1), shown: basename(command[0]!) };
}

const KILL_GRACE_MS = 5000;

/**
 * Runs a hook and waits for it. Resolves when it exits 0 (or there is none); throws a
 * HookError naming the hook, the program and what went wrong otherwise.
 */
export function runHook(hook: HookName, command: HookCommand, vars: HookVars, opts: { timeoutS: number; signal?: AbortSignal }): Promise<void> {
  if (command === null || (Array.isArray(command.run) && command.run.length === 0)) return Promise.resolve();
  const { file, args, shown } = argvOf(command.run);
  const what = `hooks.${hook} (${shown})`;
  // spawn() reports a missing working directory as ENOENT, "no such program": say which it is.
  try {
    if (!statSync(command.cwd).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    return Promise.reject(new HookError(`${what} could not be started: its working directory ${command.cwd} (that of the configuration file that set it): ${describeErrno(e)}`));
  }
  log.debug({ hook, program: shown }, 'running hook');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: command.cwd, stdio: ['ignore', 2, 2], env: { ...process.env, ...hookEnv(hook, vars) } });
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const terminate = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    // hooks.timeout is at most 7 days (checked at load); longTimeout holds any delay anyway.
    const timer: LongTimeout = longTimeout(() => {
      timedOut = true;
      terminate();
    }, opts.timeoutS * 1000);
    // The run stopping (SIGINT/SIGTERM) stops its hook too.
    if (opts.signal?.aborted) terminate();
    else opts.signal?.addEventListener('abort', terminate, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      timer.clear();
      clearTimeout(killer);
      const why = e.code === 'ENOENT' ? 'no such program' : e.code === 'EACCES' ? 'permission denied' : e.code ?? e.message;
      reject(new HookError(`${what} could not be started: ${why}`));
    });
    child.on('exit', (code, signal) => {
      opts.signal?.removeEventListener('abort', terminate);
      timer.clear();
      clearTimeout(killer);
      if (timedOut) reject(new HookError(`${what} ran longer than hooks.timeout (${opts.timeoutS} s) and was stopped`));
      else if (code === 0) resolve();
      else if (code !== null) reject(new HookError(`${what} exited with code ${code}`));
      else reject(new HookError(`${what} was killed by ${signal}`));
    });
  });
}
