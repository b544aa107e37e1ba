/**
 * What the server shows, as data: the backups by name and by generation folder (named by the
 * time it finished, `2026-12-04T181210Z`, as in WebDAV), a path inside one resolved by the bytes
 * its names have on disk (each segment checked like restore checks a child name: never empty,
 * `.`, `..`, a slash or a NUL), a directory a page at a time, the figures of `stats`, the history
 * of one path, the hits of `find`, and `diff`. Every function takes the request's signal.
 *
 * Reuses the reader of the other commands (browse/reader.ts): listings come from the entry
 * cache's store first, then the grid. Memory per request: one directory's listing (the grid
 * answers a listing whole) and a page of it; sorted name lists of a few directories are kept.
 */
import { backupStats, type GenerationStats } from '../browse/stats.js';
import type { BackupRef } from '../browse/backups.js';
import { checkName, interpret, sizeOnDisk, UnsafeNameError, type EntryInfo } from '../browse/entry-info.js';
import type { BackupReader } from '../browse/reader.js';
import { byNameBytes } from '../browse/tree.js';
import { runSummaries } from '../cache/trees.js';
import { log } from '../log.js';
import { redact } from '../core/redact.js';
import type { NodeInfo } from '../tahoe/types.js';

export interface Generation {
  ref: BackupRef;
  /** Its folder: the time it finished, `2026-12-04T181210Z` (a suffix when two share a second). */
  folder: string;
}

export interface Series {
  name: string;
  /** Newest first. */
  gens: Generation[];
}

export interface Item {
  /** The name as listed (a key of the listing). */
  listed: string;
  /** The name's bytes on disk. */
  bytes: Buffer;
  child: NodeInfo;
  entry: EntryInfo;
  /** As on disk (undefined: a directory, or not known). */
  size?: number;
}

/** A path parameter that cannot be a path inside a backup. */
export class BadPath extends Error {}

export function timeFolder(time: number | null): string | undefined {
  return time === null ? undefined : new Date(time * 1000).toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '');
}

/** Path segments (still percent-encoded) as bytes, each checked like a child name restore accepts. */
export function segmentBytes(raw: readonly string[]): Buffer[] {
  return raw.map((s) => {
    // %XX escapes are bytes (a name on disk need not be UTF-8); other characters their UTF-8.
    const b = percentBytes(s);
    // The check restore makes of a child name (browse/entry.ts), with this context's message.
    try {
      checkName(b, '');
    } catch (e) {
      if (e instanceof UnsafeNameError) throw new BadPath('a path segment is empty, ".", "..", or holds a slash or a NUL');
      throw e;
    }
    return b;
  });
}

/** %XX escapes as bytes; other characters as their UTF-8. */
function percentBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(out);
}

/** Bytes as a URL path segment (unreserved characters as they are, every other byte %XX). */
export function encodeSegment(b: Buffer): string {
  let s = '';
  for (const c of b) s += /[A-Za-z0-9._~-]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  return s;
}

export const PAGE = 500;

export class Library {
  private series?: { at: number; all: BackupRef[]; byName: Map<string, Series> };
  private stats?: { key: string; done: Map<string, GenerationStats>; finished: Promise<void> };
  private sorted = new Map<string, string[]>();

  constructor(
    readonly reader: BackupReader,
    /** The server's signal (stops background work). */
    private readonly signal: AbortSignal,
  ) {}

  /** Every backup name with its generations, newest first (asked again after 5 s). */
  async all(): Promise<Map<string, Series>> {
    if (this.series && Date.now() - this.series.at < 5000) return this.series.byName;
    const all = await this.reader.backups();
    const byName = new Map<string, Series>();
    for (const ref of all) {
      const s = byName.get(ref.name) ?? { name: ref.name, gens: [] };
      byName.set(ref.name, s);
      const base = timeFolder(ref.time) ?? (ref.generation !== null ? `generation-${ref.generation}` : redact(ref.cap).replace('#', '-'));
      let folder = base;
      for (let n = 2; s.gens.some((g) => g.folder === folder); n++) folder = `${base}-${n}`;
      s.gens.push({ ref, folder });
    }
    this.series = { at: Date.now(), all, byName };
    return byName;
  }

  async named(name: string): Promise<Series | undefined> {
    return (await this.all()).get(name);
  }

  /** A generation by its folder, `latest`, or its number. */
  async generation(name: string, folder: string): Promise<Generation | undefined> {
    const s = await this.named(name);
    if (!s) return undefined;
    if (folder === 'latest') return s.gens[0];
    return s.gens.find((g) => g.folder === folder) ?? s.gens.find((g) => /^\d+$/.test(folder) && g.ref.generation === Number(folder));
  }

  /** A directory's items, sorted by their names' bytes (the sorted names of a few directories are kept). */
  async items(dircap: string, from = 0, count = Infinity): Promise<{ total: number; items: Item[] }> {
    const children = await this.reader.dirs.children(dircap);
    let names = this.sorted.get(dircap);
    if (!names) {
      names = Object.keys(children).sort(byNameBytes);
      this.sorted.set(dircap, names);
      if (this.sorted.size > 8) this.sorted.delete(this.sorted.keys().next().value!);
    }
    const items = names.slice(from, from + count).map((listed) => this.item(listed, children[listed]!));
    return { total: names.length, items };
  }

  private item(listed: string, child: NodeInfo): Item {
    let entry: EntryInfo;
    try {
      entry = interpret({ path: [listed], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, '');
    } catch {
      // A name restore would refuse: shown as listed, never entered.
      entry = { kind: 'file', nameBytes: Buffer.from(listed) };
      return { listed, bytes: entry.nameBytes, child: { type: 'unknown' }, entry };
    }
    return { listed, bytes: entry.nameBytes, child, entry, size: sizeOnDisk({ cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, entry, this.reader.sizes) };
  }

  /**
   * The item at `segs` (names' bytes on disk) below the root `cap`; null for the root itself;
   * undefined when not there (or below something that is not a directory).
   */
  async resolve(cap: string, segs: readonly Buffer[], signal?: AbortSignal): Promise<Item | null | undefined> {
    let dir = cap;
    let found: Item | null = null;
    for (const seg of segs) {
      signal?.throwIfAborted();
      if (found && (found.entry.kind !== 'dir' || !found.child.ro_uri)) return undefined;
      if (found) dir = found.child.ro_uri!;
      const children = await this.reader.dirs.children(dir);
      const direct = seg.toString('utf8');
      const quick = Object.prototype.hasOwnProperty.call(children, direct) ? this.item(direct, children[direct]!) : undefined;
      if (quick && quick.bytes.equals(seg)) found = quick;
      else {
        found = null;
        for (const listed of Object.keys(children)) {
          const it = this.item(listed, children[listed]!);
          if (it.bytes.equals(seg) && it.child.type !== 'unknown') {
            found = it;
            break;
          }
        }
        if (!found) return undefined;
      }
    }
    return found;
  }

  /**
   * The figures of `stats` for every generation known so far (counting runs in the background,
   * started by the first call; `wait` waits for them).
   */
  async figures(wait = false): Promise<{ done: Map<string, GenerationStats>; complete: boolean }> {
    await this.all();
    const all = this.series!.all;
    const key = all.map((b) => b.cap).join(',');
    if (this.stats?.key !== key) {
      const done = new Map<string, GenerationStats>();
      const gens = backupStats(all, all, { dirs: this.reader.dirs, sizes: this.reader.sizes, signal: this.signal, runs: this.reader.cache ? runSummaries(this.reader.cache) : undefined });
      const finished = (async () => {
        for (let r = await gens.next(); !r.done; r = await gens.next()) done.set(genKey(r.value.backup), r.value);
      })().catch((e: unknown) => {
        if (!this.signal.aborted) log.warn(`serve: the figures of the backups could not be counted: ${(e as Error).message}`);
      });
      this.stats = { key, done, finished };
    }
    let complete = false;
    const s = this.stats;
    if (wait) await s.finished;
    await Promise.race([s.finished.then(() => (complete = true)), new Promise((ok) => setImmediate(ok))]);
    return { done: s.done, complete };
  }
}

export const genKey = (b: BackupRef) => `${b.name}\0${b.generation ?? ''}\0${b.cap}`;
