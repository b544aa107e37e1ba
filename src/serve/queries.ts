/**
 * The questions the pages and the API answer beyond a listing: the history of one path (every
 * generation where it changed), a search (`find`'s walk), a diff of two generations (`diff`'s).
 * Each is bounded: at most LIMIT answers (the rest is said to be cut), and stopped by the
 * request's signal when the client goes away.
 */
import { Differ, type DiffEvent } from '../browse/diff.js';
import { findInBackups, type FindHit } from '../browse/find.js';
import { RevisitBudget } from '../browse/tree.js';
import { redact } from '../core/redact.js';
import type { Generation, Item, Library } from './library.js';

export const LIMIT = 1000;

export interface HistoryRow {
  gen: Generation;
  /** Absent from this generation (it was removed, or not yet made). */
  item?: Item;
  change: 'added' | 'changed' | 'removed' | 'first';
}

/** What tells two versions of a path apart: kind, contents (a digest of the cap), size, mode, owner, mtime. */
function version(it: Item | undefined): string {
  if (!it) return '';
  const e = it.entry;
  return [e.kind, it.child.ro_uri && e.kind !== 'dir' ? redact(it.child.ro_uri) : '', it.size ?? '', e.mode ?? '', e.uid ?? '', e.gid ?? '', e.mtimeNs ?? ''].join('|');
}

/** Every generation of `name` where the path `segs` changed (added, changed, removed), newest first. */
export async function history(lib: Library, name: string, segs: Buffer[], signal: AbortSignal): Promise<HistoryRow[] | undefined> {
  const s = await lib.named(name);
  if (!s) return undefined;
  const versions: { gen: Generation; item?: Item }[] = [];
  for (const gen of s.gens) {
    signal.throwIfAborted();
    const it = await lib.resolve(gen.ref.cap, segs, signal);
    versions.push({ gen, item: it ?? undefined });
  }
  const rows: HistoryRow[] = [];
  // Oldest first: a row where the version differs from the one before.
  let before: string | undefined;
  for (const v of [...versions].reverse()) {
    const now = version(v.item);
    if (before === undefined) {
      if (now) rows.push({ ...v, change: 'first' });
    } else if (now !== before) rows.push({ ...v, change: !before ? 'added' : !now ? 'removed' : 'changed' });
    before = now;
  }
  return rows.reverse();
}

export interface SearchResult {
  hits: FindHit[];
  cut: boolean;
}

/** `find` in every generation of every backup (or of `name`): a name glob, or a path glob with a slash. */
export async function search(lib: Library, pattern: string, o: { name?: string; ignoreCase?: boolean; signal: AbortSignal }): Promise<SearchResult> {
  const all = await lib.all();
  const refs = [...all.values()].filter((s) => !o.name || s.name === o.name).flatMap((s) => s.gens.map((g) => g.ref));
  const hits: FindHit[] = [];
  const it = findInBackups(refs, { patterns: [pattern], ignoreCase: o.ignoreCase }, { dirs: lib.reader.dirs, sizes: lib.reader.sizes, signal: o.signal, maxRevisited: new RevisitBudget().limit });
  for await (const h of it) {
    if (hits.length >= LIMIT) return { hits, cut: true };
    hits.push(h);
  }
  return { hits, cut: false };
}

class Enough extends Error {}

/** `diff` of two generations: added, removed, changed (with what), in walk order. */
export async function diff(lib: Library, a: Generation, b: Generation, signal: AbortSignal): Promise<{ events: DiffEvent[]; cut: boolean }> {
  const events: DiffEvent[] = [];
  const differ = new Differ(lib.reader.client, false);
  try {
    await differ.compare({ kind: 'backup', root: a.ref.cap }, { kind: 'backup', root: b.ref.cap }, (e) => {
      signal.throwIfAborted();
      if (events.length >= LIMIT) throw new Enough();
      events.push(e);
    });
  } catch (e) {
    if (e instanceof Enough) return { events, cut: true };
    throw e;
  }
  return { events, cut: false };
}

/** The API's shape of a history row and a diff event. */
export function historyJson(r: HistoryRow): Record<string, unknown> {
  return {
    folder: r.gen.folder,
    generation: r.gen.ref.generation,
    time: r.gen.ref.time === null ? null : new Date(r.gen.ref.time * 1000).toISOString(),
    change: r.change,
    type: r.item?.entry.kind ?? null,
    size: r.item?.size ?? null,
    mtime: r.item?.entry.mtimeNs === undefined ? null : new Date(Number(r.item.entry.mtimeNs / 1_000_000n)).toISOString(),
  };
}
