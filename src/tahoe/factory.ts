/** The client a command uses, built from the configuration (one place for every command). */
import type { Config } from '../config/load.js';
import { TahoeClient } from './client.js';

/**
 * Which retry budget a client has (README, "Retries and time limits"):
 * - `interactive` (`http.interactive_retry`, short): someone is waiting — ls, restore, diff,
 *   check, cleanup, and backup's start probe. A gateway that is down is one line in seconds.
 * - `backup` (`http.retry`, long): outages that begin in the middle of a backup, ridden out
 *   so that a night's work is not lost to a gateway restart.
 */
export type RetryBudget = 'interactive' | 'backup';

export interface ClientExtras {
  /** The retry budget (default: interactive). */
  budget?: RetryBudget;
  /** Called before each request goes out (the objects rate limit). */
  beforeRequest?: () => Promise<void>;
  /** The run's one signal: aborting it stops requests in flight and retry waits. */
  signal?: AbortSignal;
  /** Connections to keep open (default: operation.concurrency + 2). */
  connections?: number;
}

export function clientFor(config: Config, extra: ClientExtras = {}): TahoeClient {
  const retry = extra.budget === 'backup' ? config.http.retry : config.http.interactive_retry;
  return new TahoeClient({
    url: config.destination.url,
    retry: { attempts: retry.attempts, delays: retry.delay },
    timeout: config.http.timeout,
    uploadTimeouts: config.operation.timeouts.updates,
    caFiles: config.http.ca_certs_files,
    connections: extra.connections ?? config.operation.concurrency + 2,
    debugRequests: config.http.debug_requests,
    beforeRequest: extra.beforeRequest,
    signal: extra.signal,
  });
}
