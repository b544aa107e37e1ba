import { AppError, EXIT } from '../errors.js';

export type TahoeErrorCode =
  | 'not-found' // 404: no such child
  | 'gone' // 410: no shares could be found
  | 'bad-request' // 400
  | 'conflict' // 409
  | 'gateway-error' // other 4xx
  | 'unavailable' // connection failures and 5xx, after the retries
  | 'timeout' // a time limit fired, after the retries
  | 'aborted' // the run is stopping (SIGINT/SIGTERM): abortAll() was called
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
