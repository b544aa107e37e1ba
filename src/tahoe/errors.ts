import { readFileSync } from 'node:fs';
import { AppError, EXIT } from '../errors.js';

export type TahoeErrorCode =
  | 'not-found' // 404: no such child
  | 'gone' // 410: no shares could be found
  | 'bad-request' // 400
  | 'conflict' // 409
  | 'gateway-error' // other 4xx
  | 'unavailable' // connection failures, 5xx and 429, after the retries
  | 'timeout' // a deadline fired, after the retries
  | 'malformed' // the answer is not valid HTTP (bad chunked framing…), after the retries
  | 'too-large' // the answer is larger than any answer to that call can be (never retried)
  | 'resource' // a limit of this run (open files, address space): the run's problem, not the gateway's
  | 'aborted' // the run's signal was aborted (SIGINT/SIGTERM, or another job's fatal error)
  | 'truncated' // a streamed answer was cut off before its end
  | 'protocol'; // the gateway answered something this client does not understand

/**
 * A failed web-API call. The message names the operation and the gateway's reason (with any
 * cap in it replaced by its redacted tag), never the cap the call was about.
 */
export class TahoeError extends AppError {
  readonly tahoeCode: TahoeErrorCode;
  readonly status?: number;
  readonly op: string;
  /** Seconds the gateway asked us to wait (a Retry-After header on a 429 or 503). */
  retryAfter?: number;
  constructor(op: string, tahoeCode: TahoeErrorCode, detail: string, status?: number, cause?: unknown) {
    super(`${op}: ${detail}`, tahoeCode, EXIT.FAILURE, { cause });
    this.op = op;
    this.tahoeCode = tahoeCode;
    this.status = status;
  }

  /** Worth another attempt: the gateway or the network may be better next time. */
  get retryable(): boolean {
    return this.tahoeCode === 'unavailable' || this.tahoeCode === 'timeout' || this.tahoeCode === 'malformed';
  }

  /** The part of the message after the operation's name. */
  get detail(): string {
    return this.message.slice(this.op.length + 2);
  }
}

export function codeForStatus(status: number): TahoeErrorCode {
  if (status === 404) return 'not-found';
  if (status === 410) return 'gone';
  if (status === 400) return 'bad-request';
  if (status === 409) return 'conflict';
  // 429 Too Many Requests: the gateway asks us to come back later, like a 503.
  if (status >= 500 || status === 429) return 'unavailable';
  return 'gateway-error';
}

/** Failures to reach the gateway at all. */
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** A connection that broke once the exchange had started. */
const BROKEN_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function codeOf(err: unknown): string | undefined {
  const own = (err as { code?: unknown })?.code;
  if (typeof own === 'string') return own;
  const cause = (err as { cause?: { code?: unknown } })?.cause?.code;
  return typeof cause === 'string' ? cause : undefined;
}

let limitsText: string | undefined;

/**
 * Reads /proc/self/limits once (Linux; elsewhere lines just do not name the number). Called
 * when a client is made: once a process has run out of descriptors it cannot open the file.
 */
export function readProcessLimits(): void {
  try {
    limitsText ??= readFileSync('/proc/self/limits', 'latin1');
  } catch {
    limitsText = '';
  }
}

/** The soft limit `name` has in /proc/self/limits ("Max open files"), or undefined. */
export function processLimit(name: string): string | undefined {
  readProcessLimits();
  const line = limitsText!.split('\n').find((l) => l.startsWith(name));
  return line?.slice(name.length).trim().split(/\s+/)[0];
}

/**
 * A limit of this run that a request ran into, as one line naming the limit, or undefined.
 * Not the gateway's doing, and never retried: the same limit would stop the next attempt.
 */
export function resourceError(op: string, err: unknown): TahoeError | undefined {
  const code = codeOf(err);
  if (code === 'EMFILE') {
    const n = processLimit('Max open files');
    return new TahoeError(op, 'resource', `cannot open a connection to the gateway: this process has too many open files (EMFILE; its limit, ulimit -n, is ${n ?? 'unknown'}): raise it, or lower operation.concurrency`, undefined, err);
  }
  if (code === 'ENFILE') {
    return new TahoeError(op, 'resource', 'cannot open a connection to the gateway: the system has too many open files (ENFILE; the limit is /proc/sys/fs/file-max)', undefined, err);
  }
  const msg = err instanceof Error ? err.message : '';
  if ((err as Error)?.name === 'RangeError' && /WebAssembly.*Out of memory/i.test(msg)) {
    // V8 reserves ~10 GiB of address space for a WebAssembly memory (its bounds-check guard
    // region); src/cli.ts restarts Node without that under an address-space limit, so this is
    // only met when that restart could not be made.
    const bytes = processLimit('Max address space');
    const limit = bytes && /^\d+$/.test(bytes) ? `${Math.round(Number(bytes) / 2 ** 20)} MiB` : (bytes ?? 'unknown');
    return new TahoeError(op, 'resource', `cannot start the HTTP parser (WebAssembly): out of address space (the limit, ulimit -v, is ${limit}): raise it, or run Node with --disable-wasm-trap-handler`, undefined, err);
  }
  return undefined;
}

/**
 * The gateway-side failure `err` stands for, or undefined when it is a local one. `where` is
 * the gateway's URL as it may be shown (password removed).
 */
export function toTahoeError(op: string, err: unknown, where = 'the gateway'): TahoeError | undefined {
  if (err instanceof TahoeError) return err;
  const local = resourceError(op, err);
  if (local) return local;
  const code = codeOf(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new TahoeError(op, 'timeout', 'the gateway stopped answering (time limit reached)', undefined, err);
  }
  if (code && CONNECT_CODES.has(code)) return new TahoeError(op, 'unavailable', `cannot reach ${where} (${code})`, undefined, err);
  if (code && BROKEN_CODES.has(code)) return new TahoeError(op, 'unavailable', `the connection to ${where} broke (${code})`, undefined, err);
  // undici's llhttp: bad chunked framing, a bad status line or header… The gateway (or a
  // proxy on the way) sent something that is not HTTP: a gateway fault, worth another try.
  if ((code && code.startsWith('HPE_')) || (err as Error)?.name === 'HTTPParserError') {
    const why = code ?? /\(([^()]+)\)\s*$/.exec((err as Error).message)?.[1] ?? 'parse error';
    return new TahoeError(op, 'malformed', `the answer of ${where} is not valid HTTP (${why})`, undefined, err);
  }
  if ((err as Error)?.name === 'AbortError') return new TahoeError(op, 'timeout', 'aborted', undefined, err);
  return undefined;
}
