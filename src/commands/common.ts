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
 * Opens the entry cache a maintenance command needs (it must exist already). `readonly`, for
 * commands that only read it: nothing is written, and a cache on a read-only disk opens too.
 */
export async function openCache(path: string, command: string, opts: { readonly?: boolean } = {}) {
  const { existsSync } = await import('node:fs');
  const { EntryCache } = await import('../cache/db.js');
  const { UsageError } = await import('../errors.js');
  if (!existsSync(path)) throw new UsageError(`source.entry_cache.path: ${path} does not exist (nothing to ${command}; has a backup run?)`);
  return EntryCache.open(path, { readonly: opts.readonly });
}

export function isoTime(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : 'never';
}
