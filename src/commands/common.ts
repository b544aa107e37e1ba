/** What every command shares: global flags, loading the configuration, logging set-up. */
import type { Argv } from 'yargs';
import { loadConfig, type Config } from '../config/load.js';
import { configFiles, gatewayUri } from '../config/locate.js';
import { configureLogging, type LogLevel } from '../log.js';
import { writeStdout } from './output.js';

export interface GlobalArgs {
  config?: string[];
  /** --gateway URL: the gateway's base URL (every command). */
  gateway?: string;
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

/** The options of what a walk of the source leaves out (backup; diff's local side uses the configured ones). */
export interface SelectionArgs {
  /** A string, or a list when given more than once (not yargs' `array`: it would swallow the PATH after it). */
  exclude?: string | string[];
  'exclude-file'?: string | string[];
  'exclude-if-present'?: string | string[];
  'exclude-caches'?: boolean;
  'one-file-system'?: boolean;
}

export function selectionOptions(y: Argv): Argv {
  return y
    .option('exclude', { type: 'string', requiresArg: true, describe: 'Leave out what matches GLOB (gitignore-like: no slash = any depth, trailing slash = directories only); repeatable, added to exclude:' })
    .option('exclude-file', { type: 'string', requiresArg: true, describe: 'Read exclude patterns from FILE, one a line; repeatable, added to exclude_files:' })
    .option('exclude-if-present', { type: 'string', requiresArg: true, describe: 'Leave out the contents of a directory holding a file of this NAME (e.g. .nobackup); repeatable' })
    .option('exclude-caches', { type: 'boolean', describe: 'Leave out the contents of directories with a valid CACHEDIR.TAG' })
    .option('one-file-system', { alias: 'x', type: 'boolean', describe: 'Stay on the source\'s file system: a mount point is kept as an empty directory' });
}

const asList = (v: string | string[] | undefined): string[] => ([] as string[]).concat(v ?? []);

/**
 * Loads the configuration — the defaults, then the -c files (or, without any, the one file
 * found where lafs-backup looks: config/locate.ts), then LAFS_BACKUP_GATEWAY, then the command
 * line: `flags` by dotted key, --gateway, and the walk's options (SelectionArgs) — and applies
 * its logging settings, with --debug / --noise winning over `logging.level`.
 */
export function loadContext(args: GlobalArgs & SelectionArgs, flags: Record<string, unknown> = {}): Config {
  const all = { ...flags };
  if (args['exclude-caches'] !== undefined) all.exclude_caches = args['exclude-caches'];
  if (args['one-file-system'] !== undefined) all.one_file_system = args['one-file-system'];
  const env = process.env.LAFS_BACKUP_GATEWAY;
  const config = loadConfig({
    files: configFiles(args.config),
    layers: [
      ...(env ? [{ origin: 'LAFS_BACKUP_GATEWAY', values: { 'destination.url': gatewayUri(env) } }] : []),
      ...(args.gateway !== undefined ? [{ origin: '--gateway', values: { 'destination.url': gatewayUri(args.gateway) } }] : []),
    ],
    append: { exclude: asList(args.exclude), exclude_files: asList(args['exclude-file']), exclude_if_present: asList(args['exclude-if-present']) },
    flags: all,
  });
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

export function isoTime(ts: number | null | undefined): string {
  return ts ? new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : 'never';
}
