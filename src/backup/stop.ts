/**
 * A backup's one stop: SIGINT/SIGTERM, or the first fatal error of a stage (the gateway beyond
 * its retry budget, the cache), aborts it with its reason. The signal reaches the stages'
 * pools (queued jobs are dropped, new work fails at once), the client (requests in flight,
 * retry waits) and the before hook; the run then ends with that reason. The after hook has a
 * stop of its own: only a signal that comes while it runs stops it.
 */
import { InterruptedError } from '../errors.js';
import { log } from '../log.js';

export class RunStop {
  readonly controller = new AbortController();
  /** The after hook's own stop: only a signal that comes while it runs stops it. */
  hook = new AbortController();
  private readonly handlers: [NodeJS.Signals, () => void][];

  constructor() {
    this.handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
      const h = () => {
        this.hook.abort();
        if (this.controller.signal.aborted) return;
        log.warn({ signal: sig }, `${sig}: stopping; what is done is kept in the cache, rerun to finish`);
        this.controller.abort(new InterruptedError(sig));
      };
      process.on(sig, h);
      return [sig, h];
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Ends the run with `e`, unless it is ending already (the first reason stands). */
  fail = (e: unknown): void => {
    if (!this.controller.signal.aborted) this.controller.abort(e);
  };

  /** Throws the reason the run stopped, if it did. */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }
}
