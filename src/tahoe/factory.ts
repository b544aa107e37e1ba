/** The client a command uses, built from the configuration (one place for every command). */
import type { Config } from '../config/load.js';
import { TahoeClient } from './client.js';

export interface ClientExtras {
  /** Called before each request goes out (the objects rate limit). */
  beforeRequest?: () => Promise<void>;
  /** The run's one signal: aborting it stops requests in flight and retry waits. */
  signal?: AbortSignal;
  /** Connections to keep open (default: operation.concurrency + 2). */
  connections?: number;
}

export function clientFor(config: Config, extra: ClientExtras = {}): TahoeClient {
  return new TahoeClient({
    url: config.destination.url,
    retry: { attempts: config.http.retry.attempts, delays: config.http.retry.delay },
    idleTimeout: config.http.timeout,
    uploadTimeouts: config.operation.timeouts.updates,
    caFiles: config.http.ca_certs_files,
    connections: extra.connections ?? config.operation.concurrency + 2,
    debugRequests: config.http.debug_requests,
    beforeRequest: extra.beforeRequest,
    signal: extra.signal,
  });
}
