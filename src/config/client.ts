/** The client a command uses, from the configuration: its keys mapped to the client factory's plain settings. */
import { makeClient, type ClientExtras, type ClientSettings } from '../tahoe/factory.js';
import type { TahoeClient } from '../tahoe/client.js';
import type { Config } from './load.js';

/** The client settings this configuration gives (`destination.url`, `http.*`, `operation.*`). */
export function clientSettings(config: Config): ClientSettings {
  const budget = (r: { attempts: number; delay: number[] }) => ({ attempts: r.attempts, delays: r.delay });
  return {
    url: config.destination.url,
    retry: { interactive: budget(config.http.interactive_retry), backup: budget(config.http.retry) },
    timeout: config.http.timeout,
    uploadTimeouts: config.operation.timeouts.updates,
    caFiles: config.http.ca_certs_files,
    connections: config.operation.concurrency + 2,
    debugRequests: config.http.debug_requests,
  };
}

export function clientFor(config: Config, extra: ClientExtras = {}): TahoeClient {
  return makeClient(clientSettings(config), extra);
}
