/**
 * A backup and the grid it goes to (issue 24.5): which grid's rows of the entry cache it uses
 * (from the start probe's welcome page, cache/grid.ts), and at the end whether the gateway has
 * the root directory it ended with — on a night with no change, the only evidence that the
 * cache's caps are still on the grid.
 */
import type { EntryCache } from '../cache/db.js';
import { chooseGrid, type GridChoice } from '../cache/grid.js';
import type { Config } from '../config/load.js';
import { AppError } from '../errors.js';
import { log } from '../log.js';
import type { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';
import { clientFor } from '../config/client.js';
import type { GatewayWelcome } from '../tahoe/welcome.js';

export interface RunGrid {
  choice: GridChoice;
  /** The start probe's answer (undefined: the gateway has no welcome page). */
  welcome?: GatewayWelcome;
}

const gone = (e: unknown): e is TahoeError => e instanceof TahoeError && (e.tahoeCode === 'gone' || e.tahoeCode === 'not-found');

/** Whether the gateway has the directory (or file) `cap`: false when it answers 410 or 404. */
export async function rootAnswers(client: TahoeClient, cap: string): Promise<boolean> {
  try {
    await client.info(cap);
    return true;
  } catch (e) {
    if (gone(e)) return false;
    throw e;
  }
}

/** Picks the grid whose rows the run uses (the cache is switched to them) and says what it found. */
export async function pickGrid(config: Config, signal: AbortSignal, cache: EntryCache, welcome: GatewayWelcome | undefined, generation: number): Promise<RunGrid> {
  const client = clientFor(config, { budget: 'interactive', signal, connections: 1 });
  try {
    const ids = welcome?.servers.map((s) => s.nodeid);
    const choice = await chooseGrid(cache, ids, generation, (cap) => rootAnswers(client, cap));
    cache.useGrid(choice.tag);
    const where = client.where;
    const n = `${choice.servers} storage server${choice.servers === 1 ? '' : 's'}`;
    switch (choice.state) {
      case 'new':
        log.warn(
          `${where} is on a grid the entry cache has no entries for (none of its ${n} is one the cache has seen): ` +
            'the cache is treated as empty for it and everything is uploaded; the entries of the other grid are kept, for a gateway on that grid',
        );
        break;
      case 'returned':
        log.warn(`${where} is on another grid than the last backup went to (one the entry cache knows): this grid's own entries are used`);
        break;
      case 'unknown':
        if (welcome) {
          log.warn(`${where} lists no storage servers, so which grid it is on cannot be told: the entry cache is used as it is, and the backup's root is checked at the end`);
        }
        break;
      case 'adopted':
      case 'identified':
        log.info(`the entry cache's entries are for the grid of ${where} (${n}) from now on`);
        break;
      default:
        log.debug({ grid: choice.tag }, 'the gateway is on the grid of the last backup');
    }
    return { choice, welcome };
  } finally {
    await client.close();
  }
}

/**
 * After phase 2: the gateway must have the root the backup ended with. If it does not (410,
 * 404), the cache said every part of the tree was stored when the grid has lost it, or it is
 * another grid that could not be told apart: the backup is not recorded (exit 1), and — when the
 * gateway is connected to every storage server it lists, or has no welcome page to say — every
 * row of this grid is forgotten, so the next backup uploads everything again. With servers
 * missing, the root may merely be out of reach: nothing is forgotten.
 */
export async function confirmRoot(client: TahoeClient, cap: string, cache: EntryCache | undefined, grid: RunGrid | undefined): Promise<void> {
  try {
    await client.info(cap);
    return;
  } catch (e) {
    if (!gone(e)) throw e;
    const head = `the gateway does not have the root directory this backup ended with (${e.message}), although the entry cache said every part of it was stored; the backup is not recorded`;
    const servers = grid?.welcome?.servers;
    const up = servers?.filter((s) => s.connected).length ?? 0;
    if (servers && servers.length === 0) throw new AppError(`${head}. The gateway lists no storage servers, so the root may only be out of reach: nothing is forgotten; run the backup again once it has some`);
    if (servers && up < servers.length) {
      throw new AppError(`${head}. ${up} of the ${servers.length} storage servers the gateway lists are connected, so the root may only be out of reach: nothing is forgotten; run the backup again once they are`);
    }
    if (!cache) throw new AppError(`${head}. Run the backup again`);
    const n = cache.forgetGrid();
    throw new AppError(`${head}. The entry cache's ${n} entries for this grid are forgotten: the next backup uploads everything again`);
  }
}
