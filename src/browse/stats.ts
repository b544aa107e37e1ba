/**
 * `stats`: what each backup and generation holds, what it cost, what it shares.
 *
 * Per generation: entries, files, directories, symlinks; bytes as on disk (each hard-link group
 * once, as `du` counts) and as stored, by encoding; what was new that night — contents no
 * earlier generation of its series had (each distinct content once: what the night added to
 * the grid), beside the run's own record of what it uploaded and reused when the backup
 * recorded one; what it shares with backups of other names (contents also in them); and the
 * growth from the generation before.
 *
 * Walks read through the reader's DirSource (the entry cache's listings first) and are memoised
 * by dircap: a subtree's totals do not depend on where it is, so a subtree the night before had
 * too is not walked again, and a subtree an earlier generation of the series had adds nothing
 * new. Memory: the totals of the directories of two generations, and the digests (16 bytes) of
 * every distinct content and directory of a series (browse/digests.ts).
 */
import type { EntryKind } from '../core/child.js';
import { UsageError } from '../errors.js';
import { encodePath } from '../scan/queue-codec.js';
import type { NodeInfo } from '../tahoe/types.js';
import type { BackupRef } from './backups.js';
import { digest, DigestMap, DigestSet } from './digests.js';
import { interpret, sizeOnDisk, type SizeSource } from './entry-info.js';
import type { DirSource } from './listing.js';
import { byNameBytes, namesOf, RevisitBudget, type PathLink } from './tree.js';

/** A path for messages, escaped as ls prints it. */
function shownOf(at: PathLink | undefined): string {
  return encodePath(Buffer.from(namesOf(at).join('/'), 'latin1'));
}

export interface Totals {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  /** As on disk: files (each hard-link group once) and symlink targets. */
  bytes: number;
  /** xz files whose plaintext size is not known (not in `bytes`). */
  unknownSizes: number;
  /** As stored on the grid, by encoding (each hard-link group once). */
  stored: { raw: number; xz: number };
  storedFiles: { raw: number; xz: number };
  /** Files whose contents a backup of another name also holds, and their stored bytes. */
  shared: { files: number; bytes: number };
}

export interface GenerationStats {
  backup: BackupRef;
  totals: Totals;
  /** Contents no earlier generation of the series had: files and stored bytes (each distinct content once). */
  new: { files: number; bytes: number };
  /** Against the generation before in the series (null for the first one). */
  growth: { entries: number; files: number; bytes: number; stored: number } | null;
  /** The run's own record (`backup --json`), when the backup recorded one. */
  run: Record<string, unknown> | null;
}

export interface SeriesStats {
  name: string;
  generations: number;
  /** Distinct contents of the series' generations: what it costs on the grid (directories aside). */
  distinct: { files: number; bytes: number };
  /** From its first generation to its last. */
  growth: { entries: number; files: number; bytes: number; stored: number };
}

export interface StatsOptions {
  dirs: DirSource;
  sizes?: SizeSource;
  signal?: AbortSignal;
  maxRevisited?: number;
  /** Recorded run summaries by generation (cache/trees.ts runSummaries). */
  runs?: Map<number, Record<string, unknown>>;
  onCycle?: (b: BackupRef, path: string) => void;
}

export function emptyTotals(): Totals {
  return { entries: 0, files: 0, dirs: 0, symlinks: 0, bytes: 0, unknownSizes: 0, stored: { raw: 0, xz: 0 }, storedFiles: { raw: 0, xz: 0 }, shared: { files: 0, bytes: 0 } };
}

function add(t: Totals, u: Totals): void {
  t.entries += u.entries;
  t.files += u.files;
  t.dirs += u.dirs;
  t.symlinks += u.symlinks;
  t.bytes += u.bytes;
  t.unknownSizes += u.unknownSizes;
  t.stored.raw += u.stored.raw;
  t.stored.xz += u.stored.xz;
  t.storedFiles.raw += u.storedFiles.raw;
  t.storedFiles.xz += u.storedFiles.xz;
  t.shared.files += u.shared.files;
  t.shared.bytes += u.shared.bytes;
}

/** Groups `backups` into series (by name), each oldest first (by generation, else time). */
export function seriesOf(backups: readonly BackupRef[]): Map<string, BackupRef[]> {
  const by = new Map<string, BackupRef[]>();
  for (const b of backups) by.set(b.name, [...(by.get(b.name) ?? []), b]);
  for (const list of by.values()) list.sort((a, b) => (a.generation ?? -1) - (b.generation ?? -1) || (a.time ?? 0) - (b.time ?? 0));
  return by;
}

const MULTI = -1;

/**
 * Statistics of the generations in `selected`, each computed within its whole series from
 * `all` (what was new needs the generations before it; what is shared needs the other
 * series). Yields one GenerationStats per selected backup, series by series, oldest first,
 * then returns the series' summaries.
 */
export async function* backupStats(all: readonly BackupRef[], selected: readonly BackupRef[], o: StatsOptions): AsyncGenerator<GenerationStats, SeriesStats[]> {
  const allSeries = seriesOf(all);
  const wanted = new Set(selected);
  // Contents by the series that hold them (MULTI: more than one): only when there are others.
  let owners: DigestMap | undefined;
  // Series in the order of their first backups (each list is oldest first).
  const first = (name: string) => allSeries.get(name)![0]!;
  const names = [...allSeries.keys()].sort((a, b) => (first(a).generation ?? Infinity) - (first(b).generation ?? Infinity) || (first(a).time ?? 0) - (first(b).time ?? 0));
  if (names.length > 1) {
    owners = new DigestMap();
    for (const [i, name] of names.entries()) {
      const seen = new DigestSet();
      for (const b of allSeries.get(name)!) await collect(b, o, seen, (d) => owners!.set(d, owners!.get(d) === undefined || owners!.get(d) === i ? i : MULTI));
    }
  }
  const summaries: SeriesStats[] = [];
  for (const name of names) {
    const gens = allSeries.get(name)!;
    if (!gens.some((b) => wanted.has(b))) continue;
    const walker = new SeriesWalker(o, owners);
    let prev: GenerationStats | undefined;
    let first: GenerationStats | undefined;
    let last: GenerationStats | undefined;
    for (const b of gens) {
      o.signal?.throwIfAborted();
      const g = await walker.generation(b);
      g.growth = prev ? delta(g.totals, prev.totals) : null;
      g.run = b.generation !== null ? (o.runs?.get(b.generation) ?? null) : null;
      prev = g;
      if (!wanted.has(b)) continue;
      first ??= g;
      last = g;
      yield g;
    }
    summaries.push({
      name,
      generations: gens.filter((b) => wanted.has(b)).length,
      distinct: { ...walker.distinct },
      growth: first && last ? delta(last.totals, first.totals) : { entries: 0, files: 0, bytes: 0, stored: 0 },
    });
  }
  return summaries;
}

function storedOf(t: Totals): number {
  return t.stored.raw + t.stored.xz;
}

function delta(a: Totals, b: Totals): { entries: number; files: number; bytes: number; stored: number } {
  return { entries: a.entries - b.entries, files: a.files - b.files, bytes: a.bytes - b.bytes, stored: storedOf(a) - storedOf(b) };
}

/** A directory's children in byte order of their names, each interpreted (names checked). */
async function listed(o: StatsOptions, cap: string, shown: string): Promise<{ name: string; child: NodeInfo; kind: EntryKind; info: ReturnType<typeof interpret> }[]> {
  const children = await o.dirs.children(cap);
  return Object.keys(children)
    .sort(byNameBytes)
    .map((name) => {
      const child = children[name]!;
      const info = interpret({ path: [name], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, shown);
      return { name, child, kind: info.kind, info };
    });
}

/** Visits every content digest of `b` not under a directory in `seen` (pass 1: which series hold what). */
async function collect(b: BackupRef, o: StatsOptions, seen: DigestSet, onContent: (d: Buffer) => void): Promise<void> {
  const stack = [b.cap];
  while (stack.length) {
    o.signal?.throwIfAborted();
    const cap = stack.pop()!;
    if (!seen.add(digest(cap))) continue;
    for (const { child, kind } of await listed(o, cap, '')) {
      if (!child.ro_uri) continue;
      if (kind === 'dir') {
        if (child.type === 'dirnode') stack.push(child.ro_uri);
      } else if (kind === 'file') onContent(digest(child.ro_uri));
    }
  }
}

interface Frame {
  cap: string;
  key: string;
  /** The path to here: names as bytes (latin1 strings), linked to the parent's (never a copy per level). */
  at: PathLink | undefined;
  kids: Awaited<ReturnType<typeof listed>>;
  i: number;
  totals: Totals;
  /** Holds hard-link members: its totals depend on the rest of the walk, so they are not memoised. */
  linked: boolean;
  /** Reached through a directory walked before in this generation. */
  again: boolean;
}

/** The generations of one series, oldest first, with what their walks can share. */
class SeriesWalker {
  /** Directories and contents of the generations walked so far. */
  private readonly union = new DigestSet();
  private prevMemo = new Map<string, Totals>();
  readonly distinct = { files: 0, bytes: 0 };

  constructor(
    private readonly o: StatsOptions,
    private readonly owners: DigestMap | undefined,
  ) {}

  async generation(b: BackupRef): Promise<GenerationStats> {
    const memo = new Map<string, Totals>();
    const fresh = { files: 0, bytes: 0 };
    const budget = new RevisitBudget(this.o.maxRevisited);
    const groups = new Set<string>();
    const onPath = new Set<string>();
    const lookup = (key: string) => memo.get(key) ?? this.prevMemo.get(key);
    const open = async (cap: string, at: PathLink | undefined, again: boolean): Promise<Frame> => {
      const shown = shownOf(at);
      const kids = await listed(this.o, cap, shown);
      if (again) budget.count(kids.length, shown);
      onPath.add(cap);
      return { cap, key: digest(cap).toString('latin1'), at, kids, i: 0, totals: emptyTotals(), linked: false, again };
    };
    budget.enter(b.cap);
    const stack: Frame[] = [await open(b.cap, undefined, false)];
    let root = emptyTotals();
    while (stack.length) {
      const f = stack[stack.length - 1]!;
      if (f.i >= f.kids.length) {
        stack.pop();
        onPath.delete(f.cap);
        this.union.add(Buffer.from(f.key, 'latin1'));
        if (!f.linked) memo.set(f.key, f.totals);
        const up = stack[stack.length - 1];
        if (up) {
          add(up.totals, f.totals);
          up.linked ||= f.linked;
        } else root = f.totals;
        continue;
      }
      this.o.signal?.throwIfAborted();
      const { child, kind, info } = f.kids[f.i++]!;
      const t = f.totals;
      t.entries++;
      if (kind === 'dir') {
        t.dirs++;
        const cap = child.ro_uri;
        if (!cap || child.type !== 'dirnode') continue;
        const at: PathLink = { name: info.nameBytes.toString('latin1'), up: f.at };
        if (onPath.has(cap)) {
          this.o.onCycle?.(b, shownOf(at));
          continue;
        }
        const d = digest(cap);
        const known = lookup(d.toString('latin1'));
        const before = budget.enter(cap);
        if (known) {
          // Walked before: its totals as they were; nothing in it is new to the series.
          if (before || f.again) budget.count(known.entries, shownOf(at));
          add(t, known);
          continue;
        }
        stack.push(await open(cap, at, before || f.again));
        continue;
      }
      const stored = child.size ?? 0;
      if (kind === 'symlink') {
        t.symlinks++;
        t.bytes += stored;
        continue;
      }
      t.files++;
      // A hard-link group counts once: its first member met in this generation's walk.
      if (info.hardlink !== undefined) {
        f.linked = true;
        if (groups.has(info.hardlink)) continue;
        groups.add(info.hardlink);
      }
      const size = sizeOnDisk({ cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, info, this.o.sizes);
      if (size === undefined) t.unknownSizes++;
      else t.bytes += size;
      const enc = info.enc === 'xz' ? 'xz' : 'raw';
      t.stored[enc] += stored;
      t.storedFiles[enc]++;
      if (!child.ro_uri) continue;
      const d = digest(child.ro_uri);
      if (this.owners?.get(d) === MULTI) {
        t.shared.files++;
        t.shared.bytes += stored;
      }
      if (this.union.add(d)) {
        fresh.files++;
        fresh.bytes += stored;
      }
    }
    this.prevMemo = memo;
    this.distinct.files += fresh.files;
    this.distinct.bytes += fresh.bytes;
    return { backup: b, totals: root, new: fresh, growth: null, run: null };
  }
}

/** `--json` keys for one generation (plain `files` and `bytes`, as the README documents). */
export function statsJson(g: GenerationStats): Record<string, unknown> {
  const t = g.totals;
  return {
    name: g.backup.name,
    generation: g.backup.generation,
    time: g.backup.time === null ? null : new Date(g.backup.time * 1000).toISOString(),
    entries: t.entries,
    files: t.files,
    directories: t.dirs,
    symlinks: t.symlinks,
    bytes: t.bytes,
    unknown_sizes: t.unknownSizes,
    stored: { bytes: storedOf(t), raw: t.stored.raw, xz: t.stored.xz, raw_files: t.storedFiles.raw, xz_files: t.storedFiles.xz },
    new: g.new,
    shared: t.shared,
    growth: g.growth,
    run: g.run,
  };
}

/** Refuses a selection that is empty (a usage error, one line). */
export function needSome(selected: readonly BackupRef[], what: string): void {
  if (!selected.length) throw new UsageError(`${what}: no backups to look at (has a backup run? \`list\` shows the backups in the entry cache)`);
}
