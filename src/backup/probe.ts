/**
 * backup's start probe: before any work, one cheap request (the gateway's welcome page) with
 * the short retry budget, so that a gateway that is down is one line naming its URL within
 * seconds, not the long budget's twenty minutes of retries later in the night.
 */
import { clientFor } from '../config/client.js';
import type { Config } from '../config/load.js';
import { log } from '../log.js';
import { TahoeError } from '../tahoe/errors.js';
import type { GatewayWelcome } from '../tahoe/welcome.js';

/**
 * Resolves with the welcome page (undefined when something answers there but not with one:
 * a proxy that passes only `/uri`, say — the calls that follow will say more); throws the one
 * line when the gateway cannot be reached or does not answer, and the run's reason when it is
 * stopped meanwhile.
 */
export async function probeGateway(config: Config, signal: AbortSignal): Promise<GatewayWelcome | undefined> {
  const client = clientFor(config, { budget: 'interactive', signal, connections: 1 });
  try {
    const welcome = await client.welcome();
    const up = welcome.servers.filter((s) => s.connected).length;
    log.debug({ servers: welcome.servers.length, connected: up }, 'the gateway answers');
    if (welcome.servers.length > 0 && up === 0) {
      log.warn(`${client.where} is connected to none of its ${welcome.servers.length} storage servers: uploads will fail until some reconnect`);
    }
    return welcome;
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (e instanceof TahoeError && !e.retryable && e.tahoeCode !== 'resource') {
      log.info(`the start probe got no welcome page (${e.message}); going on`);
      return undefined;
    }
    throw e;
  } finally {
    await client.close();
  }
}
