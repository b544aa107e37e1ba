/**
 * The command line: yargs wiring, global flags, and the mapping of errors to one-line
 * messages and exit codes. No backup logic lives here. (src/cli.ts is the executable.)
 */
import yargs, { type Argv } from 'yargs';
import { commands } from './commands/index.js';
import type { CommandSpec } from './commands/common.js';
import { guardOutput, StdoutClosed, stdoutFailure } from './commands/output.js';
import { VERSION } from './version.js';
import { AppError, EXIT, resourceLimit, UsageError } from './errors.js';
import { log, oneLine } from './log.js';
import { scrubCaps } from './core/redact.js';

export const EXIT_TABLE = `Exit status:
  0    success
  1    failure (gateway unreachable after retries, disk error, …); nothing cached is lost
  2    usage or configuration error (bad flag, key, value, regex, cap argument)
  3    finished but incomplete: some entries could not be read (backup) or written (restore) and were skipped
  4    check found an unhealthy or unrecoverable backup
  5    busy: another lafs-backup holds the entry cache's lock
  6    a hook failed: before_backup (nothing was backed up) or after_backup (the backup itself is done)
  130  interrupted by SIGINT (the cache is committed; rerun to finish)
  141  stdout was closed early (its reader, such as head, quit): the output stopped there quietly, as with coreutils
  143  interrupted by SIGTERM (the cache is committed; rerun to finish)`;

export function report(err: unknown): number {
  // The reader of our output went away: nothing to say, as `ls | head` says nothing.
  if (err instanceof StdoutClosed) return err.exitCode;
  if (err instanceof AppError) {
    process.stderr.write(`lafs-backup: ${oneLine(err.message)}\n`);
    return err.exitCode;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  // Out of descriptors or memory somewhere no step named it (yargs reading its strings, a
  // module loading): still the limit's own line, not "internal error".
  const limit = resourceLimit(e, 'lafs-backup could not go on');
  if (limit) {
    process.stderr.write(`lafs-backup: ${oneLine(limit.message)}\n`);
    return limit.exitCode;
  }
  process.stderr.write(`lafs-backup: internal error: ${oneLine(e.message)}\n`);
  log.debug({ stack: scrubCaps(e.stack ?? '') }, 'internal error');
  return EXIT.FAILURE;
}

/**
 * What follows `--` is arguments, whatever they look like (`ls daily -- -draft.txt`, as `rm -- -f`).
 * yargs leaves them out of a command's positional arguments (they went to `_`, so `dump daily --
 * -f` dumped the whole backup), so they are parsed as stand-ins that cannot look like options, and
 * put back before the command runs (and in a usage error's message).
 */
const STAND_IN = /\u0000arg(\d+)\u0000/g;
function standIns(argv: string[]): { argv: string[]; restore: <T>(v: T) => T } {
  const at = argv.indexOf('--');
  // The shell's completion asks with the words typed so far, a lone `--` among them.
  if (at < 0 || argv.includes('--get-yargs-completions')) return { argv, restore: (v) => v };
  const after = argv.slice(at + 1);
  const put = (s: string) => s.replace(STAND_IN, (_, i: string) => after[Number(i)]!);
  const restore = <T>(v: T): T => (typeof v === 'string' ? (put(v) as T) : Array.isArray(v) ? (v.map((x) => (typeof x === 'string' ? put(x) : x)) as T) : v);
  // A lone `-` (stdin) is left as it is: the commands count those on the command line (cap-input.ts).
  return { argv: [...argv.slice(0, at), ...after.map((a, i) => (a === '-' ? a : `\u0000arg${i}\u0000`))], restore };
}

export async function main(rawArgv: string[]): Promise<number> {
  guardOutput();
  const { argv, restore } = standIns(rawArgv);
  let code: number = EXIT.OK;
  const register = (y: Argv, spec: CommandSpec): Argv =>
    y.command(
      spec.command,
      spec.describe,
      (b) => (spec.builder ? spec.builder(b) : b),
      async (args) => {
        code = await spec.run(args as never);
      },
    );
  let y: Argv = yargs(argv)
    .scriptName('lafs-backup')
    // The package's own version, fixed when it is built (yargs would look for a package.json
    // above the current directory: "unknown" outside the checkout).
    .version(VERSION)
    .usage('$0 [-c CONFIG]... COMMAND [options]\n\nBack directory trees up to a Tahoe-LAFS grid.')
    .option('config', {
      alias: 'c',
      type: 'string',
      describe: 'Configuration file (repeatable; later ones override earlier). Without it: $LAFS_BACKUP_CONFIG, else ~/.config/lafs-backup/config.yaml, else /etc/lafs-backup.yaml',
      global: true,
    })
    .middleware((args) => {
      for (const k of Object.keys(args)) (args as Record<string, unknown>)[k] = restore(args[k]);
    })
    .middleware((args) => {
      // Repeated -c flags arrive as an array, a single one as a string.
      if (args.config !== undefined) (args as { config: unknown }).config = ([] as string[]).concat(args.config as string | string[]);
    })
    .option('gateway', {
      type: 'string',
      requiresArg: true,
      global: true,
      describe: "The gateway's base URL, e.g. http://127.0.0.1:3456 (sets destination.url; also LAFS_BACKUP_GATEWAY)",
    })
    .option('debug', { type: 'boolean', describe: 'Log at debug level', global: true })
    .option('noise', { type: 'boolean', describe: 'Log one line per path (lower than debug); caps stay redacted', global: true })
    .option('progress', {
      type: 'boolean',
      describe: 'Show progress on stderr (backup, restore, check). Default: only when stderr is a terminal; --no-progress hides it',
      global: true,
    })
    .completion('completion', 'Print a bash/zsh completion script (add it to ~/.bashrc or ~/.zshrc)')
    .strict()
    .demandCommand(1, 'Give a command; see --help.')
    .recommendCommands()
    .epilogue(EXIT_TABLE)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    // A usage error ends the parse here: yargs runs no handler after a fail() that throws,
    // so a mistyped flag never runs the command (no lock, no request, no file written).
    .fail((msg: string, err: Error) => {
      // yargs' own parse errors (an option given without its value) are usage errors too.
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(`${restore(msg ?? err.message)} (see --help)`);
    });
  for (const spec of commands) y = register(y, spec as CommandSpec);
  skipHelpCache(y);
  try {
    await y.parseAsync();
  } catch (err) {
    return report(err);
  }
  // A command that wrote stdout some other way, and did not notice its failure, must not exit 0.
  const lost = stdoutFailure();
  return lost && code === EXIT.OK ? report(lost) : code;
}

/**
 * yargs builds a command's whole help text as soon as it has started the command's handler
 * (command.js: cacheHelpMessage), for a help it might show if the handler fails later. Ours
 * never does (a failure is one line and an exit code; --help is answered before any handler
 * runs), and the text costs 40-80 ms of every run's start-up — the unchanged night's included.
 * Reached through yargs' internal methods: if a later yargs has none, the cache is built as before.
 */
function skipHelpCache(y: Argv): void {
  const internal = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: unknown } } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}
