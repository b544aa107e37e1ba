/**
 * The directory stage (restic's treeSaver): a directory becomes an immutable dirnode once all
 * its children are done — their names, caps and edge metadata go into
 * `POST /uri?t=mkdir-immutable` — unless the cache already knows a directory with exactly
 * these children and this metadata. It owns its worker pool; the queue reader asks it
 * `listed(…)` (answered whole by a listing row, at once) or `save(…)` (a job) and waits on
 * `room()`.
 *
 * When every child is cached as it is (each has its `row`), the directory's listing key is
 * recorded too, standing for those rows: the next run with the same listing answers the whole
 * directory from that one row (`listed`), without its children.
 *
 * A failure of the gateway or the cache is fatal: the stage hands it to `fail`, which stops
 * the run; jobs not started are then dropped.
 */
import { dirKey } from '../cache/keys.js';
import { childBytes, childName, type Child, type Metadata } from '../core/child.js';
import { Pool } from '../core/pool.js';
import { log, logs } from '../log.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { EventSink } from './events.js';
import { absPath, type ReadXattrs } from './file-plan.js';
import type { Saved } from './file-stage.js';
import { edgeMetadata } from './meta.js';
import type { DirCache, DirMaker } from './ports.js';
import type { EntryStat } from './source-stat.js';

export interface DirStageOptions {
  root: Buffer;
  client: DirMaker;
  /** Undefined with deduplication disabled. */
  cache?: DirCache;
  concurrency: number;
  readXattrs?: ReadXattrs;
  emit: EventSink;
  signal: AbortSignal;
  fail: (e: unknown) => void;
}

/** What a listing row stands for besides the directory: its files and symlinks, not looked at. */
export interface ListedChildren {
  files: number;
  symlinks: number;
  /** The files' bytes on disk. */
  bytes: number;
}

/** Sorted by name bytes; names made unique (only escaped non-UTF-8 names can collide). */
function arrange(results: readonly (Child | null)[]): Child[] {
  const kids = results
    .filter((r): r is Child => r !== null)
    .map((c) => ({ c, bytes: childBytes(c) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ c }) => c);
  const used = new Set<string>();
  for (const k of kids) {
    while (used.has(k.name)) k.name += '~';
    used.add(k.name);
  }
  return kids;
}

export class DirStage {
  private readonly pool: Pool;

  constructor(private readonly o: DirStageOptions) {
    this.pool = new Pool('directories', o.concurrency, o.signal);
  }

  /**
   * The directory answered by its listing row, when the cache knows `listing`: counted with
   * the files and symlinks it stands for, which are not looked at. No job, no request.
   * Undefined when the listing is not known.
   */
  listed(e: QueueEntry, st: EntryStat, listing: Buffer, held: ListedChildren): Child | undefined {
    const cap = this.o.cache?.knownListing(listing);
    if (!cap) return undefined;
    this.listedWithin(e.path, listing, held);
    const { name, metadata, whole } = this.ownEdge(e, st);
    const child: Child = { name, type: 'dirnode', cap, metadata };
    if (whole) child.row = listing;
    return child;
  }

  /**
   * A directory inside one answered whole by its listing (backup/plan-answer.ts), whose listing
   * the caller has just found known: its row is raised and it is counted with what it stands
   * for. No edge is made (its parent's dirnode has it already).
   */
  listedWithin(path: Buffer, listing: Buffer, held: ListedChildren): void {
    this.o.cache!.didReuse(listing);
    this.o.emit({ type: 'dir-listed', path, ...held });
    if (logs('noise')) log.noise({ path: encodePath(path), files: held.files + held.symlinks }, 'directory unchanged (its listing)');
  }

  /**
   * A job: waits for the children, then reuses a known dircap or creates the directory.
   * `listing`: the directory's listing key, when it may have one (see reader.ts).
   */
  save(e: QueueEntry, st: EntryStat, children: readonly Saved[], listing?: Buffer): Promise<Child | null> {
    const p = this.pool.add(() => this.make(e, st, children, listing));
    p.then(undefined, this.o.fail);
    return p;
  }

  room(): Promise<void> | undefined {
    return this.pool.room();
  }

  settled(): Promise<void> {
    return this.pool.idle();
  }

  /** The directory's name in its parent and its edge metadata; `whole`: its xattrs were read. */
  private ownEdge(e: QueueEntry, st: EntryStat): { name: string; metadata: Metadata; whole: boolean } {
    const { name, rawname } = childName(baseName(e.path));
    const xattrs = this.o.readXattrs?.(absPath(this.o.root, e.path), st);
    return { name, metadata: edgeMetadata(e, { mtimeNs: st.mtimeNs, xattrs, rawname }), whole: xattrs !== null };
  }

  private async make(e: QueueEntry, st: EntryStat, children: readonly Saved[], listing?: Buffer): Promise<Child> {
    const { cache, emit } = this.o;
    const results = await Promise.all(children);
    const kids = arrange(results);
    const { name, metadata, whole } = this.ownEdge(e, st);
    const key = dirKey(metadata, kids);
    const known = cache?.knownCap(key, 'dir');
    let cap: string;
    if (known) {
      cache!.didReuse(key);
      emit({ type: 'dir-reused', path: e.path });
      cap = known;
    } else {
      cap = await this.o.client.mkdirImmutable(kids);
      emit({ type: 'dir-created', path: e.path });
      cache?.didUpload(key, 'dir', cap);
    }
    if (logs('noise')) log.noise({ path: encodePath(e.path), children: kids.length, reused: Boolean(known) }, 'directory');
    const child: Child = { name, type: 'dirnode', cap, metadata };
    if (listing && cache && kids.length === results.length && kids.every((k) => k.row)) {
      // Subdirectories' listing rows are raised by their own reuse; files' and symlinks' rows,
      // and this directory's row, only through this one.
      const refs = kids.filter((k) => k.type === 'filenode').map((k) => k.row!);
      refs.push(key);
      cache.didList(listing, cap, refs);
      // The parent's listing may stand for this edge only if it is complete.
      if (whole) child.row = listing;
    }
    return child;
  }
}
