/**
 * What `check` does with what it found lost (issue 24.5): a node the gateway cannot recover
 * (files, directories, a root that is gone) is forgotten in the entry cache, with the
 * directories above it (their dircaps contain it; a listing row would answer them whole and the
 * walk would never reach it), so that the next backup uploads it again and makes those
 * directories anew. The same contents give the same cap on the same gateway, so the re-upload
 * also heals older backups and other directories holding the same object.
 *
 * Forgetting is done only where it is known to be right:
 * - the gateway is on the grid the cache's rows are for (its welcome page, cache/grid.ts) — a
 *   check through a mistyped port must not empty the cache of the real grid;
 * - the node is unrecoverable while enough storage servers answered to tell (its shares are
 *   gone, not merely out of reach); a root that is gone, while the gateway is connected to as
 *   many servers as its shares need;
 * - no backup is running: the cache's lock is taken for the forgetting (a backup reusing the
 *   lost caps at that moment would write them back into the directories it makes).
 * The gateway's welcome page is asked only when needed (once per check run).
 */
import type { EntryCache } from '../cache/db.js';
import { lockCache } from '../cache/lock.js';
import { gridOf, gridOfGeneration, readBook, type GridBook } from '../cache/grid.js';
import { BusyError } from '../errors.js';
import type { TahoeClient } from '../tahoe/client.js';
import { tryParseCap } from '../tahoe/caps.js';
import { TahoeError } from '../tahoe/errors.js';
import type { GatewayWelcome } from '../tahoe/welcome.js';
import { LOST_LIMIT, type CheckOutcome, type CheckTarget } from './check.js';

type Identity =
  | { kind: 'same'; tag: number; book: GridBook; connected: number }
  | { kind: 'not'; why: string };

/** What a check did about lost nodes, for its report. */
export interface Forgotten {
  /** Lost nodes forgotten, and the directories above them (distinct, not lost themselves). */
  lost: number;
  above: number;
  /** Rows deleted. */
  rows: number;
  /** Past LOST_LIMIT: every row of the grid went. */
  all?: boolean;
}

export interface LostReport {
  forgotten?: Forgotten;
  /** One line for the report (never a cap), when there is something to say. */
  line?: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export class LostObjects {
  private identity?: Promise<Identity>;

  constructor(
    private readonly cache: EntryCache | undefined,
    private readonly writable: boolean,
    private readonly client: TahoeClient,
  ) {}

  /** Which grid of the cache the gateway is on (asked once). */
  private grid(): Promise<Identity> {
    this.identity ??= this.ask();
    return this.identity;
  }

  private async ask(): Promise<Identity> {
    if (!this.cache) return { kind: 'not', why: 'there is no entry cache' };
    let welcome: GatewayWelcome;
    try {
      welcome = await this.client.welcome();
    } catch (e) {
      if (!(e instanceof TahoeError)) throw e;
      return { kind: 'not', why: `which grid the gateway is on cannot be told (${e.message})` };
    }
    const ids = welcome.servers.map((s) => s.nodeid);
    if (!ids.length) return { kind: 'not', why: 'the gateway lists no storage servers, so which grid it is on cannot be told' };
    if (!readBook(this.cache)) return { kind: 'not', why: 'the entry cache has not recorded which grid its entries are for yet (the next backup does)' };
    const found = gridOf(this.cache, ids);
    if (!found) return { kind: 'not', why: "the gateway is on another grid than the entry cache's entries are for" };
    return { kind: 'same', tag: found.grid.tag, book: found.book, connected: welcome.servers.filter((s) => s.connected).length };
  }

  /**
   * The targets this gateway can have: with backups of several grids in the cache, those of
   * the gateway's grid (and any the cache cannot place). `dropped`: how many were left out, and
   * whether the newest backup is among them (the gateway is not where the backups go now).
   */
  async ofThisGrid(targets: CheckTarget[]): Promise<{ targets: CheckTarget[]; dropped: number; newestDropped: boolean }> {
    const book = this.cache && readBook(this.cache);
    if (!book || book.grids.length < 2) return { targets, dropped: 0, newestDropped: false };
    const id = await this.grid();
    if (id.kind !== 'same') return { targets, dropped: 0, newestDropped: false };
    const mine = (t: CheckTarget) => t.generation === undefined || (gridOfGeneration(book, t.generation) ?? id.tag) === id.tag;
    const kept = targets.filter(mine);
    const newest = targets.reduce<CheckTarget | undefined>((a, t) => ((t.generation ?? 0) > (a?.generation ?? 0) ? t : a), undefined);
    return { targets: kept, dropped: targets.length - kept.length, newestDropped: newest !== undefined && !mine(newest) };
  }

  /** Forgets what `outcome` found lost, when that is known to be right; says what it did or why not. */
  async settle(outcome: CheckOutcome): Promise<LostReport> {
    const name = outcome.target.name;
    const found = outcome.lost.length + (outcome.rootGone ? 1 : 0);
    if (!found && !outcome.unsure) return {};
    if (!this.cache) return {};
    if (!found) {
      const one = outcome.unsure === 1;
      return {
        line:
          `${name}: ${plural(outcome.unsure, 'node')} could not be recovered while fewer storage servers answered than ${one ? 'its' : 'their'} shares need: ` +
          `${one ? 'it' : 'they'} may be only out of reach, and ${one ? 'is' : 'are'} not forgotten in the entry cache`,
      };
    }
    const notForgotten = (why: string) => ({ line: `${name}: the lost ${found === 1 ? 'object is' : 'objects are'} not forgotten in the entry cache: ${why}` });
    if (!this.writable) return notForgotten('it cannot be written; the next backup would reuse them');
    const id = await this.grid();
    if (id.kind !== 'same') return notForgotten(id.why);
    const lost = new Set(outcome.lost.map((l) => l.cap));
    if (outcome.rootGone) {
      // A gone root says nothing about the shares if the gateway cannot reach enough servers.
      const needed = tryParseCap(outcome.target.cap)?.needed ?? 1;
      if (id.connected >= needed) lost.add(outcome.target.cap);
      else if (!outcome.lost.length) return notForgotten(`the gateway is connected to ${id.connected} storage servers, fewer than its shares need, so it may be only out of reach`);
    }
    const above = new Set(outcome.lost.flatMap((l) => l.above).filter((c) => !lost.has(c)));
    // A backup running now may be writing rows with these caps again: not while it runs.
    let release: (() => Promise<void>) | undefined;
    try {
      release = await lockCache(this.cache.path);
    } catch (e) {
      if (e instanceof BusyError) return notForgotten('another lafs-backup is using it (a backup may be reusing them right now); check again when it is done');
      throw e;
    }
    let rows: number;
    try {
      this.cache.useGrid(id.tag);
      rows = outcome.lost.length > LOST_LIMIT ? this.cache.forgetGrid() : this.cache.forgetCaps([...lost, ...above]);
    } finally {
      await release();
    }
    if (outcome.lost.length > LOST_LIMIT) {
      return {
        forgotten: { lost: lost.size, above: above.size, rows, all: true },
        line: `${name}: more than ${LOST_LIMIT} objects are lost: every entry of this grid is forgotten in the entry cache (${plural(rows, 'row')}); the next backup uploads everything again`,
      };
    }
    const forgotten = { lost: lost.size, above: above.size, rows };
    if (!rows) return { forgotten };
    const what = describe(outcome, lost, above.size);
    return { forgotten, line: `${name}: ${what} forgotten in the entry cache (${plural(rows, 'row')}): the next backup uploads ${lost.size + above.size === 1 ? 'it' : 'them'} again` };
  }
}

/** "1 lost file and the 2 directories above it are", "its root directory, which is gone, is". */
function describe(outcome: CheckOutcome, lost: ReadonlySet<string>, above: number): string {
  const files = outcome.lost.filter((l) => l.type !== 'directory').length;
  const dirs = lost.size - files;
  const parts: string[] = [];
  if (files) parts.push(`${plural(files, 'lost file')}`);
  if (dirs) parts.push(`${plural(dirs, 'lost directory', 'lost directories')}`);
  const them = lost.size === 1 ? 'it' : 'them';
  const head = parts.join(' and ');
  const all = above ? `${head} and ${above === 1 ? 'the directory' : `the ${above} directories`} above ${them}` : head;
  return `${all} ${lost.size + above === 1 ? 'is' : 'are'}`;
}
