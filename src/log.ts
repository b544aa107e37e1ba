/**
 * Logging: pino, to stderr by default. Levels: warn (default), debug (`--debug`), noise
 * (`--noise`, one line per path). Every line goes through `scrubCaps` before it is written,
 * so even a cap that slipped into a message or a field leaves only its redacted tag.
 */
import { closeSync } from 'node:fs';
import { NotOwnFile, openOwnForAppend } from './core/own-file.js';
import { ConfigError, describeErrno } from './errors.js';
import { writeFullySync } from './fsutil.js';
import pino from 'pino';
import { scrubCaps } from './core/redact.js';

export type LogLevel = 'noise' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFormat = 'text' | 'json';

const LEVEL_NAMES: Record<number, string> = { 15: 'NOISE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const HIDDEN = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Where formatted lines go: a file descriptor, or a function (tests). */
type Sink = { fd: number; own: boolean } | ((line: string) => void);

class ScrubbingDestination {
  format: LogFormat = 'text';
  sink: Sink = { fd: 2, own: false };
  /** Tests: sees each line before scrubbing, to prove the code never emits a cap at all. */
  audit?: (raw: string) => void;
  /** Clears a progress line on stderr before a log line is written there (it redraws itself). */
  clearProgress?: () => void;

  write(line: string): void {
    this.audit?.(line);
    const out = scrubCaps(this.format === 'json' ? line : toText(line));
    if (typeof this.sink === 'function') this.sink(out);
    else {
      if (this.sink.fd === 2) this.clearProgress?.();
      try {
        writeFullySync(this.sink.fd, out);
      } catch {
        // A log line that cannot be written (closed pipe, full disk) must not end the backup.
      }
    }
  }
}

function toText(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine;
  }
  const time = new Date(typeof rec.time === 'number' ? rec.time : Date.now()).toISOString();
  const level = LEVEL_NAMES[rec.level as number] ?? String(rec.level);
  const extras = Object.entries(rec)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`);
  return `${time} ${level} ${String(rec.msg ?? '')}${extras.length ? ' ' + extras.join(' ') : ''}\n`;
}

const destination = new ScrubbingDestination();

export const log = pino(
  {
    level: 'warn',
    customLevels: { noise: 15 },
    base: undefined,
    timestamp: pino.stdTimeFunctions.epochTime,
    formatters: { level: (_label, number) => ({ level: number }) },
  },
  destination,
);

export type Logger = typeof log;

export interface LoggingOptions {
  level?: LogLevel;
  format?: LogFormat;
  /**
   * Append to this file instead of writing to stderr: created 0600, or an existing regular file
   * of this user's (a symlink, a FIFO or another user's file is refused; see core/own-file).
   */
  file?: string | null;
  /** Tests: receive each formatted line. */
  sink?: (line: string) => void;
  /** Tests: receive each line as pino wrote it, before caps are scrubbed. */
  audit?: (raw: string) => void;
}

/** Applies the logging configuration; only what `opts` names changes. */
export function configureLogging(opts: LoggingOptions): void {
  if (opts.level) log.level = opts.level;
  if (opts.format) destination.format = opts.format;
  if (opts.audit) destination.audit = opts.audit;
  if (!('sink' in opts) && !('file' in opts)) return;
  const old = destination.sink;
  if (opts.sink) destination.sink = opts.sink;
  else if (opts.file) {
    let fd: number;
    try {
      fd = openOwnForAppend(opts.file).fd;
    } catch (e) {
      throw new ConfigError(`logging.file: cannot open ${opts.file}: ${e instanceof NotOwnFile ? e.reason : describeErrno(e)}`);
    }
    destination.sink = { fd, own: true };
  } else destination.sink = { fd: 2, own: false };
  if (typeof old !== 'function' && old.own && old !== destination.sink) closeSync(old.fd);
}

/** Lets a progress display on stderr step aside for log lines written there. */
export function onStderrLine(clearProgress: (() => void) | undefined): void {
  destination.clearProgress = clearProgress;
}

/** A message made fit for one line of stderr: caps redacted, line breaks folded. */
export function oneLine(text: string): string {
  return scrubCaps(text).replace(/\s*\n\s*/g, ' ').trim();
}

/** True when lines at `level` are written (to skip building costly per-path messages). */
export function logs(level: LogLevel): boolean {
  return log.isLevelEnabled(level);
}
