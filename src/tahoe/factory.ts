/**
 * The client a command uses, built from plain settings: the client knows nothing of the
 * configuration (config/client.ts maps the configuration to these settings, one place for
 * every command).
 */
import { TahoeClient, type ClientOptions } from './client.js';
import type { RetryPolicy } from './retry.js';

/**
 * Which retry budget a client has (README, "Retries and time limits"):
 * - `interactive` (`http.interactive_retry`, short): someone is waiting — ls, restore, diff,
 *   check, cleanup, and backup's start probe. A gateway that is down is one line in seconds.
 * - `backup` (`http.retry`, long): outages that begin in the middle of a backup, ridden out
 *   so that a night's work is not lost to a gateway restart.
 */
export type RetryBudget = 'interactive' | 'backup';

/** What every client of a run shares: the client's options with both retry budgets and the default connection count. */
export interface ClientSettings extends Omit<ClientOptions, 'retry' | 'connections' | 'beforeRequest' | 'signal'> {
  retry: Record<RetryBudget, RetryPolicy>;
  /** Connections kept open when the caller does not say. */
  connections: number;
}

export interface ClientExtras {
  /** The retry budget (default: interactive). */
  budget?: RetryBudget;
  /** Called before each request goes out (the objects rate limit). */
  beforeRequest?: () => Promise<void>;
  /** The run's one signal: aborting it stops requests in flight and retry waits. */
  signal?: AbortSignal;
  /** Connections to keep open (default: the settings'). */
  connections?: number;
}

export function makeClient(settings: ClientSettings, extra: ClientExtras = {}): TahoeClient {
  const { retry, connections, ...options } = settings;
  return new TahoeClient({
    ...options,
    retry: retry[extra.budget ?? 'interactive'],
    connections: extra.connections ?? connections,
    beforeRequest: extra.beforeRequest,
    signal: extra.signal,
  });
}
