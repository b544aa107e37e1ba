import { AppError, EXIT } from '../errors.js';

export type TahoeErrorCode =
  | 'not-found' // 404: no such child
  | 'gone' // 410: no shares could be found
  | 'bad-request' // 400
  | 'conflict' // 409
  | 'gateway-error' // other 4xx
  | 'unavailable' // connection failures and 5xx, after the retries
  | 'timeout' // a time limit fired, after the retries
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
  constructor(op: string, tahoeCode: TahoeErrorCode, detail: string, status?: number, cause?: unknown) {
    super(`${op}: ${detail}`, tahoeCode, EXIT.FAILURE, { cause });
    this.op = op;
    this.tahoeCode = tahoeCode;
    this.status = status;
  }

  /** Worth another attempt: the gateway or the network may be better next time. */
  get retryable(): boolean {
    return this.tahoeCode === 'unavailable' || this.tahoeCode === 'timeout';
  }
}

export function codeForStatus(status: number): TahoeErrorCode {
  if (status === 404) return 'not-found';
  if (status === 410) return 'gone';
  if (status === 400) return 'bad-request';
  if (status === 409) return 'conflict';
  if (status >= 500) return 'unavailable';
  return 'gateway-error';
}

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** The gateway-side failure `err` stands for, or undefined when it is a local one. */
export function toTahoeError(op: string, err: unknown): TahoeError | undefined {
  if (err instanceof TahoeError) return err;
  const code = (err as { code?: string })?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new TahoeError(op, 'timeout', 'the gateway stopped answering (time limit reached)', undefined, err);
  }
  if (code && NET_CODES.has(code)) {
    return new TahoeError(op, 'unavailable', `cannot reach the gateway (${code})`, undefined, err);
  }
  const cause = (err as { cause?: { code?: string } })?.cause;
  if (cause?.code && NET_CODES.has(cause.code)) {
    return new TahoeError(op, 'unavailable', `cannot reach the gateway (${cause.code})`, undefined, err);
  }
  if ((err as Error)?.name === 'AbortError') return new TahoeError(op, 'timeout', 'aborted', undefined, err);
  return undefined;
}
