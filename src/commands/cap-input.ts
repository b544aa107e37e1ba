/**
 * Caps given to a command without putting them on its command line, where `ps` (and
 * /proc/PID/cmdline) shows them to every local user: `-` reads them from stdin, `--cap-file
 * FILE` from a file. Both read text with one cap per line — its last field, so lines of the
 * result file (`TIME SOURCE CAP`) can be given as they are; blank lines and `#` comments are
 * skipped, and anything else is a usage error naming the line, as a bad cap argument is.
 * Reads are bounded (MAX_CAP_INPUT).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { hideBin } from 'yargs/helpers';
import { describeErrno, UsageError } from '../errors.js';
import { assertDirCap, parseCap } from '../tahoe/caps.js';

/** A result file of some hundred thousand lines; far more than any list of caps. */
export const MAX_CAP_INPUT = 16 << 20;

/**
 * How many lone `-` arguments the command line holds (the options in `valueOptions`, which take
 * a value, may take a `-` as theirs: `cleanup -e -`). yargs drops a lone `-` from a command's
 * positional arguments (it re-parses them as `--caps -`, and `-` looks like an option to it),
 * so `check -` would silently become `check` and check every backup: it is counted here, on
 * the command line as given.
 */
export function stdinDashes(valueOptions: readonly string[], argv: readonly string[] = hideBin(process.argv)): number {
  const options = new Set(['c', 'config', ...valueOptions]);
  const takesValue = (tok: string | undefined): boolean => {
    if (!tok) return false;
    if (tok.startsWith('--')) return !tok.includes('=') && options.has(tok.slice(2));
    return /^-[A-Za-z]+$/.test(tok) && options.has(tok.slice(-1));
  };
  let n = 0;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return n + argv.slice(i + 1).filter((a) => a === '-').length;
    if (argv[i] === '-' && !takesValue(argv[i - 1])) n++;
  }
  return n;
}

/** Reads all of `fd` up to MAX_CAP_INPUT bytes; `origin` names it in the error. */
function readBounded(fd: number, origin: string, what: string): string {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      // A non-blocking stdin with nothing yet: wait a little and read on.
      if ((e as { code?: string }).code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if ((e as { code?: string }).code === 'EOF') break;
      throw new UsageError(`${what}: cannot read ${origin}: ${describeErrno(e)}`);
    }
    if (n === 0) break;
    total += n;
    if (total > MAX_CAP_INPUT) throw new UsageError(`${what}: ${origin} holds more than ${MAX_CAP_INPUT} bytes; that is not a list of caps`);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function readStdin(what: string): string {
  // isatty, not process.stdin: creating that stream would make the pipe non-blocking.
  if (isatty(0)) throw new UsageError(`${what}: caps are read from stdin here, and stdin is a terminal: give them as arguments, pipe them in, or use --cap-file FILE`);
  return readBounded(0, 'stdin', what);
}

function readCapFile(path: string, what: string): string {
  if (!path) throw new UsageError(`${what}: --cap-file needs a file (for stdin, give - as the argument)`);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO with no writer does not block the open.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new UsageError(`${what}: --cap-file ${path}: cannot open it: ${describeErrno(e)}`);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new UsageError(`${what}: --cap-file ${path} is a directory`);
    return readBounded(fd, `--cap-file ${path}`, what);
  } finally {
    closeSync(fd);
  }
}

/** The caps in `text`, one per line (see the file's comment); `origin` names the input in errors. */
export function parseCapLines(text: string, origin: string, what: string, dirs: boolean): string[] {
  const caps: string[] = [];
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const field = t.split(/\s+/).pop()!;
    const where = `${what}: ${origin} line ${i + 1}`;
    caps.push((dirs ? assertDirCap(field, where) : parseCap(field, where)).text);
  });
  return caps;
}

export interface CapSources {
  /** Caps given as arguments (a lone `-` is not among them: see stdinDashes). */
  args: readonly string[];
  /** `-` was given: read caps from stdin. */
  stdin: boolean;
  /** --cap-file FILE, each. */
  files: readonly string[];
}

/**
 * The caps given as arguments, on stdin and in cap files, in that order, each once. Every cap
 * is checked (`dirs`: a directory cap, as a backup is); stdin or a file that holds none is a
 * usage error too (an empty pipe must not mean "every backup").
 */
export function capsFromInput(src: CapSources, what: string, opts: { dirs?: boolean } = {}): string[] {
  const dirs = opts.dirs ?? false;
  const caps = src.args.map((t, i) => (dirs ? assertDirCap(t, `${what}: cap ${i + 1}`) : parseCap(t, `${what}: cap ${i + 1}`)).text);
  const inputs: [string, () => string][] = [];
  if (src.stdin) inputs.push(['stdin', () => readStdin(what)]);
  for (const f of src.files) inputs.push([`--cap-file ${f}`, () => readCapFile(f, what)]);
  for (const [origin, read] of inputs) {
    const found = parseCapLines(read(), origin, what, dirs);
    if (!found.length) throw new UsageError(`${what}: ${origin} holds no caps`);
    caps.push(...found);
  }
  return [...new Set(caps)];
}

/** One BACKUP given as `-` (stdin) or with --cap-file: exactly one directory cap. */
export function oneCap(from: { stdin: true } | { file: string }, what: string): string {
  const origin = 'stdin' in from ? 'stdin' : `--cap-file ${from.file}`;
  const caps = [...new Set(parseCapLines('stdin' in from ? readStdin(what) : readCapFile(from.file, what), origin, what, true))];
  if (caps.length !== 1) throw new UsageError(`${what}: ${origin} holds ${caps.length} caps; give exactly one`);
  return caps[0]!;
}

/**
 * The BACKUP arguments of restore, ls and diff, with `--cap-file`: each cap file gives the next
 * BACKUP (in order), and the positional arguments fill what is left — so `restore --cap-file F
 * DEST` is `restore CAP DEST`. A BACKUP given as `-` (yargs hands it over as '') is read from
 * stdin. `backups`: how many leading arguments are backups; `required`: how many arguments in
 * all must be there, `names` their names for the usage line.
 */
export function backupArguments(
  command: string,
  names: readonly string[],
  required: number,
  positionals: readonly (string | undefined)[],
  capFiles: readonly string[],
  backups = 1,
): { backups: string[]; rest: (string | undefined)[] } {
  const given = positionals.filter((p): p is string => p !== undefined);
  if (capFiles.length > backups) throw new UsageError(`${command}: --cap-file given ${capFiles.length} times; ${command} takes ${backups === 1 ? 'one BACKUP' : `${backups} BACKUPs`}`);
  const all: ({ file: string } | string)[] = [...capFiles.map((file) => ({ file })), ...given];
  if (all.length < required) throw new UsageError(`Not enough non-option arguments: ${command} needs ${names.slice(0, required).join(' and ')}${capFiles.length ? ` (--cap-file gives ${names[0]})` : ''} (see --help)`);
  if (all.length > names.length) throw new UsageError(`Unknown argument: ${String(all[names.length])} (see --help)`);
  let fromStdin = 0;
  const read = (a: { file: string } | string, i: number): string => {
    const what = `${command}: ${names[i]}`;
    if (typeof a !== 'string') return oneCap(a, what);
    if (a !== '' && a !== '-') return a;
    if (++fromStdin > 1) throw new UsageError(`${command}: only one argument can be read from stdin (-); give the other with --cap-file`);
    return oneCap({ stdin: true }, what);
  };
  return {
    backups: all.slice(0, backups).map(read),
    rest: names.slice(backups).map((_, i) => all[backups + i] as string | undefined),
  };
}
