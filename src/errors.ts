/**
 * Errors that end a command. Each carries the exit code the CLI uses and a message that is
 * one line, names the culprit (key, file, path, a cap's redacted form) and never a cap.
 */
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

/** Exit codes, documented in the README and in `--help`. */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  INCOMPLETE: 3,
  UNHEALTHY: 4,
  BUSY: 5,
  HOOK: 6,
  SIGINT: 130,
  /** stdout was closed (`| head`): the output stops quietly, as a shell reports coreutils killed by SIGPIPE. */
  STDOUT_CLOSED: 141,
  SIGTERM: 143,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class AppError extends Error {
  readonly exitCode: number;
  readonly code: string;
  constructor(message: string, code = 'failure', exitCode: number = EXIT.FAILURE, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** Bad flags, bad configuration, bad arguments: the user must change something. */
export class UsageError extends AppError {
  constructor(message: string, code = 'usage') {
    super(message, code, EXIT.USAGE);
  }
}

export class ConfigError extends UsageError {
  constructor(message: string) {
    super(message, 'config');
  }
}

/** Another process holds the cache lock. */
export class BusyError extends AppError {
  constructor(message: string) {
    super(message, 'busy', EXIT.BUSY);
  }
}

/** A `hooks.before_backup` / `hooks.after_backup` command failed, timed out or could not start. */
export class HookError extends AppError {
  constructor(message: string) {
    super(message, 'hook', EXIT.HOOK);
  }
}

/** The run was asked to stop by a signal; it stopped cleanly. */
export class InterruptedError extends AppError {
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`interrupted by ${signal}; what was done is kept, rerun to finish`, 'interrupted', signal === 'SIGINT' ? EXIT.SIGINT : EXIT.SIGTERM);
  }
}

/**
 * Reading one source entry failed (EACCES, ENOENT, EIO, ELOOP… on that entry itself). Raised
 * only where the source is read, so a backup skips that entry (exit 3) and nothing else is
 * ever mistaken for it: a gateway or cache failure has its own type and ends the run.
 */
export class SourceError extends AppError {
  constructor(
    readonly path: string,
    readonly errno: string | undefined,
    cause: unknown,
  ) {
    super(`cannot read ${path}: ${describeErrno(cause)}`, 'source', EXIT.INCOMPLETE, { cause });
  }
}

/**
 * A limit of the process or of the system was reached while reading the source (open files,
 * memory): the run's problem, never one entry's — it ends the run (exit 1) with one line that
 * names the limit, instead of skipping entries that are fine.
 */
export class ResourceLimitError extends AppError {
  constructor(message: string, cause?: unknown) {
    super(message, 'limit', EXIT.FAILURE, { cause });
  }
}

/**
 * The process's soft limit on open files (/proc/self/limits), read once at start: once the
 * limit is reached, the file that says what it is can no longer be opened.
 */
const OPEN_FILES_LIMIT = ((): string | undefined => {
  try {
    return /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
})();

/** The ResourceLimitError for a failed system call that hit a limit (`doing`: what it was for), or undefined. */
export function resourceLimit(e: unknown, doing: string): ResourceLimitError | undefined {
  const code = errnoCode(e);
  if (code === 'EMFILE') {
    const n = OPEN_FILES_LIMIT;
    return new ResourceLimitError(`${doing}: too many open files (EMFILE): this process may have ${n ?? 'only so many'} open (ulimit -n); raise the limit and run again`, e);
  }
  if (code === 'ENFILE') return new ResourceLimitError(`${doing}: the system's table of open files is full (ENFILE; sysctl fs.file-max); run again when it is not`, e);
  if (code === 'ENOMEM') return new ResourceLimitError(`${doing}: out of memory (ENOMEM; ulimit -v, or the machine's memory)`, e);
  return undefined;
}

/** The entry cache failed (the database file: corrupt, locked, read-only, full). Ends the run. */
export class CacheError extends AppError {
  constructor(message: string, exitCode: number = EXIT.FAILURE) {
    super(message, 'cache', exitCode);
  }
}

/** A failed system call (Node's SystemError: it names the call). Anything else is a bug. */
export function isSystemError(e: unknown): e is Error & { code: string; syscall: string } {
  return e instanceof Error && typeof (e as { syscall?: unknown }).syscall === 'string';
}

/**
 * Runs `fn` where a failure is typed: a failed system call becomes `make(e)`, anything else
 * (a bug) passes through unchanged. The source reads of a backup and the writes into a
 * restore's DEST both use it.
 */
export function onSystemError<T>(make: (e: Error & { code: string }) => Error, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw isSystemError(e) ? make(e) : e;
  }
}

export async function onSystemErrorAsync<T>(make: (e: Error & { code: string }) => Error, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw isSystemError(e) ? make(e) : e;
  }
}

/**
 * The system error for "what was reached is not beneath the source" (a directory on its path
 * replaced by a symlink): raised by the kernel's refusal (openat2) or the /proc check.
 */
export function notBeneath(syscall: string): Error & { code: string; syscall: string } {
  return Object.assign(new Error('not beneath the source'), { code: 'ENOTBENEATH', syscall });
}

/** A failed system call on the source entry `path`: a SourceError, or the limit it hit. */
function sourceFailure(path: string, e: Error & { code: string }): AppError {
  return resourceLimit(e, `reading ${path}`) ?? new SourceError(path, e.code, e);
}

/**
 * Types the failure of a read of the source entry `path`: a failed system call is a SourceError
 * (or, for a limit of the process or system, a ResourceLimitError that ends the run).
 */
export function sourceError(path: string, e: unknown): unknown {
  return isSystemError(e) ? sourceFailure(path, e) : e;
}

/** Runs a read of the source entry `path`; a failed system call becomes a SourceError (see sourceError). */
export function fromSource<T>(path: string, read: () => T): T {
  return onSystemError((e) => sourceFailure(path, e), read);
}

/** The async form of fromSource. */
export function fromSourceAsync<T>(path: string, read: () => Promise<T>): Promise<T> {
  return onSystemErrorAsync((e) => sourceFailure(path, e), read);
}

/** A native module's compiled part could not be found (installed with --ignore-scripts, or for another Node). */
export function isMissingBinding(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : '';
  return /Could not locate the bindings file|No native build was found|was compiled against a different Node\.js version|Cannot find module .*\.node/.test(msg);
}

/** The one line for a missing native binding: which module, and the fix. */
export function missingBinding(module: string): AppError {
  return new AppError(`the native module ${module} is not built for this Node.js (installed with --ignore-scripts?); run \`npm rebuild ${module}\` where lafs-backup is installed`);
}

/** A Node system error's code (ENOENT, EACCES, …), if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** The errno's code (EACCES…), as Node's errors carry it. */
const CODES = new Map(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

/** An Error as Node's calls throw them (code, errno, syscall), for a failure the addon returned as a number. */
export function errnoError(errno: number, syscall: string): Error {
  const code = CODES.get(errno) ?? 'EUNKNOWN';
  return Object.assign(new Error(`${syscall}: ${code}`), { code, errno: -errno, syscall });
}

/** A short reason for a system error, without the path Node puts into its messages. */
export function describeErrno(err: unknown): string {
  const code = errnoCode(err);
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'not a directory',
    EISDIR: 'is a directory',
    ELOOP: 'too many levels of symbolic links',
    ENAMETOOLONG: 'name too long',
    ENOSPC: 'no space left on device',
    EROFS: 'read-only file system',
    EIO: 'input/output error',
    EMFILE: 'too many open files',
    ENFILE: 'too many open files in the system',
    ENOMEM: 'out of memory',
    EEXIST: 'already exists',
    ENOTEMPTY: 'directory not empty',
    ENOTBENEATH: 'what was opened is not beneath the source (a directory on its path was replaced by a symlink?)',
    ENOTREG: 'it is no longer a regular file (a FIFO, device or socket was put in its place?)',
    EREPLACED: 'it was replaced by another file after it was looked at',
  };
  if (code && reasons[code]) return `${reasons[code]} (${code})`;
  if (code) return code;
  return err instanceof Error ? err.message : String(err);
}
