/** The per-object time limits of an upload (`operation.timeouts.updates`). */
import { pipeline, Transform, type Readable } from 'node:stream';

/**
 * Time limits for an upload: the body must keep moving (no stall longer than the limit),
 * and once it is all sent the gateway must answer within the limit.
 */
export class UploadGuard {
  private timer: NodeJS.Timeout;
  timedOut = false;
  private finished = false;

  constructor(
    private readonly limitMs: number,
    private readonly ctl: AbortController,
  ) {
    this.timer = setTimeout(() => this.fire(), limitMs);
  }

  /** Passes the body through, noting progress; errors of the source reach the request. */
  watch(body: Readable): Readable {
    const timer = this.timer;
    const meter = new Transform({
      transform(chunk, _enc, cb) {
        timer.refresh();
        cb(null, chunk);
      },
      flush: (cb) => {
        this.bodyDone();
        cb();
      },
    });
    return pipeline(body, meter, () => {});
  }

  bodyDone(): void {
    this.finished = true;
    this.timer.refresh();
  }

  reason(): string {
    const secs = Math.round(this.limitMs / 1000);
    return this.finished
      ? `the gateway did not answer within ${secs} s of the end of the upload`
      : `the upload stalled for ${secs} s`;
  }

  private fire(): void {
    this.timedOut = true;
    this.ctl.abort(new Error('upload time limit'));
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
