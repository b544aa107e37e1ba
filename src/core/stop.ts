/**
 * A command's one stop: an AbortSignal with the reason it stopped. SIGINT/SIGTERM (the session,
 * commands/session.ts, is the one place that listens to them and calls `interrupt`) or the first
 * fatal error a part reports (`fail`) aborts it; the first reason stands. What the signal
 * reaches stops: the client (requests in flight, retry waits), pools (queued jobs dropped),
 * walks (at their next step), hooks.
 */
import { InterruptedError } from '../errors.js';

export type StopSignalName = 'SIGINT' | 'SIGTERM';

/** Told of every interrupt, the first and any later one (`first`: nothing had stopped the command yet). */
export type InterruptListener = (sig: StopSignalName, first: boolean) => void;

export class Stop {
  private readonly controller = new AbortController();
  private readonly listeners: InterruptListener[] = [];

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopped(): boolean {
    return this.controller.signal.aborted;
  }

  /** Ends the command with `e`, unless it is ending already (the first reason stands). */
  fail = (e: unknown): void => {
    if (!this.controller.signal.aborted) this.controller.abort(e);
  };

  /** Throws the reason the command stopped, if it did. */
  check(): void {
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  /** A signal came: listeners first (they may log why), then the stop, with an InterruptedError. */
  interrupt(sig: StopSignalName): void {
    const first = !this.controller.signal.aborted;
    for (const l of this.listeners) l(sig, first);
    this.fail(new InterruptedError(sig));
  }

  /** Adds a listener for interrupts (a backup's after hook has a stop of its own). */
  onInterrupt(l: InterruptListener): void {
    this.listeners.push(l);
  }
}

/** Resolves when `signal` aborts (a server's or the grid's normal end). */
export function stopped(signal: AbortSignal): Promise<void> {
  return new Promise((ok) => (signal.aborted ? ok() : signal.addEventListener('abort', () => ok(), { once: true })));
}
