/**
 * Which grid the entry cache's rows belong to (issue 24.5): a cap is good only on the grid it
 * was stored on, and a cache pointed at another grid must not hand out caps that grid never had.
 *
 * Grids are told apart by what a gateway reports on its welcome page: the node ids of its
 * storage servers (each stable for the life of its server). A gateway whose servers overlap the
 * ids a grid of this cache has seen is on that grid — servers added or replaced one at a time
 * keep it the same grid — and every backup adds the ids it sees (most recent first, at most
 * MAX_SERVERS).
 *
 * Each grid has rows of its own: its tag is appended to every key its runs look up and write
 * (GRID_MARK and the tag, 16 bytes, after the key; tag 0 — the first grid, and every row from
 * before grids were told apart — has keys as they always were). A gateway on a grid the cache
 * has not seen therefore finds nothing (the cache is empty for it) while the rows of the grid
 * it has seen stay as they are, so going back costs nothing. Rows of a grid no longer used go
 * the way every row goes, with the generations that used them, as cleanup forgets them.
 *
 * The record of grids (the "book") is JSON in the cache's meta table under `grids`: no schema
 * change. Its grids are kept most recently used first; each lists the generations backed up
 * on it, as ranges, so that `check` can tell which backups this gateway can have.
 */
import { randomInt } from 'node:crypto';
import type { BackupRow, EntryCache } from './db.js';

export const MAX_SERVERS = 256;
export const MAX_GRIDS = 16;
export const MAX_RANGES = 256;

export interface GridRecord {
  /**
   * Appended to its rows' keys (0: nothing appended). Drawn at random (1 to 2³²−1), so that
   * a record lost or rewritten never gives one grid's rows to another.
   */
  tag: number;
  /** Storage server node ids seen, most recently seen first; empty: not identified yet. */
  servers: string[];
  /** Generations backed up on it, as [first, last] ranges, oldest first. */
  generations: [number, number][];
}

export interface GridBook {
  /** Most recently used first. */
  grids: GridRecord[];
}

export function readBook(cache: EntryCache): GridBook | undefined {
  const raw = cache.getMeta('grids');
  if (!raw) return undefined;
  try {
    const b = JSON.parse(raw) as GridBook;
    if (Array.isArray(b?.grids)) return b;
  } catch {
    // An unreadable record is no record: the next backup writes one again.
  }
  return undefined;
}

/** The grid of the cache these servers are on: the one sharing most of them (ties: the most recently used). */
export function matchGrid(book: GridBook, ids: readonly string[]): GridRecord | undefined {
  const now = new Set(ids);
  let best: GridRecord | undefined;
  let most = 0;
  for (const g of book.grids) {
    const n = g.servers.filter((s) => now.has(s)).length;
    if (n > most) [best, most] = [g, n];
  }
  return best;
}

/** The grid a generation was backed up on, if the book says. */
export function gridOfGeneration(book: GridBook, generation: number): number | undefined {
  // The most recently used grid first: a run resumed on another grid belongs to the later one.
  return book.grids.find((g) => g.generations.some(([a, b]) => a <= generation && generation <= b))?.tag;
}

function newTag(book: GridBook): number {
  for (;;) {
    const tag = randomInt(1, 2 ** 32);
    if (!book.grids.some((g) => g.tag === tag)) return tag;
  }
}

function addGeneration(g: GridRecord, generation: number): void {
  const last = g.generations[g.generations.length - 1];
  if (last && last[0] <= generation && generation <= last[1] + 1) last[1] = Math.max(last[1], generation);
  else g.generations.push([generation, generation]);
  if (g.generations.length > MAX_RANGES) g.generations.splice(0, g.generations.length - MAX_RANGES);
}

/** The newest finished backup of a grid (by the generations the book gives it). */
function newestOf(backups: readonly BackupRow[], g: GridRecord): BackupRow | undefined {
  return [...backups].reverse().find((b) => g.generations.some(([lo, hi]) => lo <= b.generation && b.generation <= hi));
}

/**
 * How the gateway's grid relates to the cache:
 * - `same`: the grid of the last backup;
 * - `returned`: a grid the cache knows, but not the one of the last backup (its own rows are used);
 * - `adopted`: a cache without a record takes this grid as the one its rows were made on;
 * - `identified`: a grid the cache had rows of but no servers for (see chooseGrid) is this one;
 * - `new`: a grid the cache has no rows of: it is empty for it;
 * - `unknown`: the gateway lists no storage servers, or has no welcome page: nothing to compare.
 */
export type GridState = 'same' | 'returned' | 'adopted' | 'identified' | 'new' | 'unknown';

export interface GridChoice {
  state: GridState;
  tag: number;
  /** The servers the gateway lists (0 for unknown). */
  servers: number;
}

/**
 * Decides which grid's rows a backup uses, and records it (the gateway's servers, this
 * generation) in the book. `ids`: the gateway's storage servers (undefined: no welcome page).
 * `answers(cap)` says whether the gateway has a backup's root: asked only when the cache has
 * rows whose grid is not identified (a cache written before grids were told apart, seen for
 * the first time, with backups in it) — its newest backup decides whether they are this grid's.
 */
export async function chooseGrid(cache: EntryCache, ids: readonly string[] | undefined, generation: number, answers: (cap: string) => Promise<boolean>): Promise<GridChoice> {
  const found = readBook(cache);
  if (!ids?.length) return { state: 'unknown', tag: found?.grids[0]?.tag ?? 0, servers: 0 };
  const book: GridBook = found ?? { grids: [{ tag: 0, servers: [], generations: [] }] };
  const backups = cache.listBackups();
  if (!found && backups.length) book.grids[0]!.generations.push([1, backups[backups.length - 1]!.generation]);
  let grid = matchGrid(book, ids);
  let state: GridState = grid === book.grids[0] ? 'same' : 'returned';
  if (!grid) {
    // Rows whose grid was never seen are this grid's if its newest backup is here (or if there is none).
    for (const g of book.grids.filter((x) => x.servers.length === 0)) {
      const newest = newestOf(backups, g);
      if (!newest || (await answers(newest.cap))) {
        grid = g;
        state = found ? 'identified' : 'adopted';
        break;
      }
    }
  }
  if (!grid) {
    grid = { tag: newTag(book), servers: [], generations: [] };
    state = 'new';
  }
  grid.servers = [...new Set([...ids, ...grid.servers])].slice(0, MAX_SERVERS);
  addGeneration(grid, generation);
  const g = grid;
  book.grids = [g, ...book.grids.filter((x) => x !== g)].slice(0, MAX_GRIDS);
  cache.setMeta('grids', JSON.stringify(book));
  cache.commit();
  return { state, tag: g.tag, servers: ids.length };
}

/**
 * The grid of the cache a gateway with these servers is on, without recording anything
 * (`check`): undefined when the cache has no record, or the gateway lists no servers, or it is
 * on none of the grids recorded.
 */
export function gridOf(cache: EntryCache, ids: readonly string[] | undefined): { book: GridBook; grid: GridRecord } | undefined {
  const book = readBook(cache);
  if (!book || !ids?.length) return undefined;
  const grid = matchGrid(book, ids);
  return grid ? { book, grid } : undefined;
}
