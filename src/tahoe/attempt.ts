/**
 * One try of a web-API call: its abort controller (the run's signal aborts it too) and its
 * deadline. The deadline covers the whole exchange — connecting, sending, the answer's
 * headers and its whole body — and grows only with progress in whole units, never with
 * single bytes, so a gateway that trickles its answer cannot keep a call alive:
 *
 * - any call: `http.timeout` seconds; each complete MiB of an answer, and each complete line
 *   of a deep-check or manifest stream, gives it that long again from then on;
 * - an upload: `operation.timeouts.updates` (per attempt) to send each MiB of the body, and
 *   then, once the body is sent, for the whole answer.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import { TahoeError, toTahoeError } from './errors.js';

export const MiB = 1 << 20;

export interface DeadlineSpec {
  seconds: number;
  /** The configuration key that sets it (named in the error line). */
  key: string;
  /** An upload: the limit is per MiB sent, then for the answer. */
  upload?: boolean;
}

export class Attempt {
  readonly ctl = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private fired = false;
  private units = 0;
  /** An upload's body is all sent (or there was none to stream). */
  private sent = false;
  private ended = false;
  private readonly onStop = () => this.ctl.abort(this.stop.reason);

  constructor(
    private readonly stop: AbortSignal,
    private readonly deadline: DeadlineSpec,
  ) {
    // setTimeout's limit is 2^31-1 ms (~24.8 days); a longer delay would fire at once.
    this.timer = setTimeout(() => this.fire(), Math.min(2 ** 31 - 1, Math.max(1, deadline.seconds * 1000)));
    // The request's socket keeps the process alive while it is in flight; an answer nobody
    // reads to the end must not keep a finished command from exiting until its deadline.
    this.timer.unref();
    this.stop.addEventListener('abort', this.onStop, { once: true });
  }

  /** A complete unit of progress (a MiB moved, a line of a stream): the deadline starts again. */
  progress(): void {
    this.units++;
    if (!this.ended) this.timer.refresh();
  }

  /** The upload's body is all sent: the gateway has the limit for its answer. */
  bodySent(): void {
    this.sent = true;
    if (!this.ended) this.timer.refresh();
  }

  /** Passes an upload's body through, counting each MiB sent as progress. */
  meter(body: Readable): Readable {
    let sinceUnit = 0;
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        sinceUnit += chunk.length;
        if (sinceUnit >= MiB) {
          sinceUnit %= MiB;
          this.progress();
        }
        cb(null, chunk);
      },
      flush: (cb) => {
        this.bodySent();
        cb();
      },
    });
    // Errors of the source (a file that cannot be read) reach the request through the meter.
    return pipeline(body, meter, () => {});
  }

  /** Why the deadline fired, in words naming the key that sets it. */
  reason(): string {
    const { seconds: s, key, upload } = this.deadline;
    if (upload && !this.sent) return `the upload stalled: less than 1 MiB was sent in ${s} s (${key})`;
    if (upload) return `the gateway did not answer within ${s} s of the end of the upload (${key})`;
    if (this.units === 0) return `the gateway did not complete its answer within ${s} s (${key})`;
    return `the gateway's answer stalled: no further MiB or line came within ${s} s (${key})`;
  }

  /** The typed failure for `err`, met while this attempt was in flight; undefined: a local error. */
  typed(op: string, err: unknown, where?: string): TahoeError | undefined {
    if (this.stop.aborted) return new TahoeError(op, 'aborted', 'stopped while in flight', undefined, err);
    // Typed already (a status, a size limit, a deadline met while reading): that is what happened.
    if (err instanceof TahoeError) return err;
    if (this.fired) return new TahoeError(op, 'timeout', this.reason(), undefined, err);
    return toTahoeError(op, err, where);
  }

  /** Stops the deadline; `abort`: also ends the request (a body no one will read). */
  end(abort = false): void {
    if (!this.ended) {
      this.ended = true;
      clearTimeout(this.timer);
      this.stop.removeEventListener('abort', this.onStop);
    }
    if (abort && !this.ctl.signal.aborted) this.ctl.abort(new Error('request ended'));
  }

  private fire(): void {
    if (this.ended) return;
    this.fired = true;
    this.ctl.abort(new Error('deadline'));
  }
}
