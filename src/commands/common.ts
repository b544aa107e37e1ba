/** What every command shares: global flags, loading the configuration, logging set-up. */
import type { Argv } from 'yargs';
import { loadConfig, type Config } from '../config/load.js';
import { configureLogging, type LogLevel } from '../log.js';
import { writeStdout } from './output.js';

export interface GlobalArgs {
  config?: string[];
  debug?: boolean;
  noise?: boolean;
  /** --progress / --no-progress; undefined: shown when stderr is a terminal. */
  progress?: boolean;
}

/** A command: its yargs definition and what it runs (returning the exit code). */
export interface CommandSpec<A = Record<string, unknown>> {
  command: string | string[];
  describe: string;
  builder?: (y: Argv) => Argv;
  run: (args: A & GlobalArgs) => Promise<number>;
}

export function defineCommand<A>(spec: CommandSpec<A>): CommandSpec<A> {
  return spec;
}

/**
 * Loads the configuration (defaults, -c files, then `flags` by dotted key) and applies its
 * logging settings, with --debug / --noise winning over `logging.level`.
 */
export function loadContext(args: GlobalArgs, flags: Record<string, unknown> = {}): Config {
  const config = loadConfig({ files: args.config ?? [], flags });
  const level: LogLevel = args.noise ? 'noise' : args.debug ? 'debug' : config.logging.level;
  configureLogging({ level, format: config.logging.format, file: config.logging.file });
  return config;
}

/**
 * Writes a line to stdout and waits until it is written (output may be a pipe). Rejects with
 * StdoutClosed (exit 141, nothing said) or StdoutError (one line): see commands/output.ts.
 */
export function out(text: string): Promise<void> {
  return writeStdout(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * Caps named on the command line, or read from stdin when none (or `-`) are given: every
 * token starting with `URI:` counts, so lines of a result file can be piped in as they are.
 */
export async function capsFromInput(args: string[], what: string, opts: { dirs?: boolean } = {}): Promise<string[]> {
  const { assertDirCap, parseCap } = await import('../tahoe/caps.js');
  const { UsageError } = await import('../errors.js');
  let tokens = args.filter((a) => a !== '-');
  if (!tokens.length) {
    if (process.stdin.isTTY) throw new UsageError(`${what}: give caps as arguments, or pipe them on stdin`);
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    tokens = Buffer.concat(chunks).toString('utf8').split(/\s+/).filter((t) => t.startsWith('URI:'));
  }
  // Backups are directories: with `dirs`, a file or verify cap is refused up front.
  return tokens.map((t, i) => (opts.dirs ? assertDirCap(t, `${what}: cap ${i + 1}`) : parseCap(t, `${what}: cap ${i + 1}`)).text);
}

/** Opens the entry cache a maintenance command needs (it must exist already). */
export async function openCache(path: string, command: string) {
  const { existsSync } = await import('node:fs');
  const { EntryCache } = await import('../cache/db.js');
  const { UsageError } = await import('../errors.js');
  if (!existsSync(path)) throw new UsageError(`source.entry_cache.path: ${path} does not exist (nothing to ${command}; has a backup run?)`);
  return EntryCache.open(path);
}

export function isoTime(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : 'never';
}
