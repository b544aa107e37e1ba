/**
 * `find`: which backups, and which generations of them, hold paths matching patterns.
 *
 * Each backup is walked through the reader's DirSource — the entry cache's store of listings
 * first (no request for a directory read before), the grid for the rest — newest backup first.
 * Nights share most of their tree: a subtree (a dircap, at a path when a pattern has a slash)
 * found without a match is remembered as a 16-byte digest and not entered again in another
 * backup. A walk is bounded like every other: names checked (entry-info.ts), a directory on its own
 * path not entered, entries of directories reached again counted against the revisit budget.
 */
import { Minimatch } from 'minimatch';
import type { EntryKind } from '../core/child.js';
import { redact } from '../core/redact.js';
import { encodePath } from '../scan/queue-codec.js';
import type { NodeInfo } from '../tahoe/types.js';
import type { BackupRef } from './backups.js';
import { digest, DigestSet } from './digests.js';
import { interpret, sizeOnDisk, type SizeSource } from './entry-info.js';
import type { DirSource } from './listing.js';
import { byNameBytes, namesOf, RevisitBudget, type PathLink } from './tree.js';

export interface FindQuery {
  /** minimatch patterns: without a slash, a name at any depth; with one, the path from the root. */
  patterns: string[];
  ignoreCase?: boolean;
  /** mtime bounds in ns since the epoch (newer: at or after; older: before). */
  newerNs?: bigint;
  olderNs?: bigint;
  /** Size bounds in bytes, as on disk: at least / at most. */
  minSize?: number;
  maxSize?: number;
}

export interface FindHit {
  backup: BackupRef;
  /** The path from the backup's root, escaped as `ls` prints it (queue-file escaping). */
  path: string;
  /** The path's bytes, base64, when escaping changed anything (a name not UTF-8, a backslash, a control byte). */
  pathBase64?: string;
  type: EntryKind;
  /** As on disk; undefined when not known (an xz file of an old backup the cache has forgotten). */
  size?: number;
  storedSize?: number;
  enc?: 'xz';
  mtimeNs?: bigint;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Files and symlinks: a stable tag of the contents (a digest of the cap, never the cap), for "did it change". */
  content?: string;
}

export interface FindOptions {
  dirs: DirSource;
  sizes?: SizeSource;
  signal?: AbortSignal;
  /** --max-revisited, per backup. */
  maxRevisited?: number;
  /** Files whose size is unknown and so could not be compared with a size bound (counted here). */
  unknownSizes?: { count: number };
  /** A directory that contains itself (not entered again). */
  onCycle?: (b: BackupRef, path: string) => void;
}

/** A compiled query: whether a path matches, whether a directory may lead to a match. */
export class Matcher {
  private readonly mms: Minimatch[];
  /** Every pattern matches names alone: what is below a directory does not depend on where it is. */
  readonly pathFree: boolean;

  constructor(readonly q: FindQuery) {
    this.mms = q.patterns.map((p) => {
      const slash = p.includes('/');
      return new Minimatch(slash ? p.replace(/^\/+/, '') : p, { dot: true, matchBase: !slash, nocase: q.ignoreCase ?? false, nocomment: true, nonegate: true });
    });
    this.pathFree = q.patterns.every((p) => !p.includes('/'));
  }

  matches(path: string): boolean {
    return this.mms.some((m) => m.match(path));
  }

  /** A directory at `path` may hold a match below it. */
  mayLeadTo(path: string): boolean {
    return this.pathFree || this.mms.some((m) => m.match(path, true));
  }

  /** The other conditions (mtime, size) of the query; `unknown` counts sizes that could not be compared. */
  accepts(h: Pick<FindHit, 'mtimeNs' | 'size' | 'type'>, unknown?: { count: number }): boolean {
    const { newerNs, olderNs, minSize, maxSize } = this.q;
    if (newerNs !== undefined && (h.mtimeNs === undefined || h.mtimeNs < newerNs)) return false;
    if (olderNs !== undefined && (h.mtimeNs === undefined || h.mtimeNs >= olderNs)) return false;
    if (minSize !== undefined || maxSize !== undefined) {
      if (h.type === 'dir') return false;
      if (h.size === undefined) {
        if (unknown) unknown.count++;
        return false;
      }
      if (minSize !== undefined && h.size < minSize) return false;
      if (maxSize !== undefined && h.size > maxSize) return false;
    }
    return true;
  }
}

interface Frame {
  cap: string;
  /** The path to here: names as bytes (latin1 strings), linked to the parent's. */
  at: PathLink | undefined;
  children: Record<string, NodeInfo>;
  names: string[];
  i: number;
  again: boolean;
  /** A hit was found in this directory or below it. */
  hit: boolean;
  /** The memo key of this subtree (its dircap, and its path unless every pattern is path-free). */
  key: Buffer;
}

/** The bytes of a path whose links hold names as latin1 strings. */
function bytesOf(at: PathLink | undefined): Buffer {
  return Buffer.from(namesOf(at).join('/'), 'latin1');
}

/**
 * The hits in `backups` (give them newest first), backup by backup, in walk order (names in
 * byte order, a directory before what is in it). `noMatch` carries the subtrees without a
 * match from one backup to the next (and across calls, if the caller keeps it).
 */
export async function* findInBackups(backups: readonly BackupRef[], query: FindQuery, o: FindOptions, noMatch = new DigestSet()): AsyncGenerator<FindHit> {
  const m = new Matcher(query);
  for (const b of backups) {
    o.signal?.throwIfAborted();
    yield* findIn(b, m, o, noMatch);
  }
}

async function* findIn(b: BackupRef, m: Matcher, o: FindOptions, noMatch: DigestSet): AsyncGenerator<FindHit> {
  const budget = new RevisitBudget(o.maxRevisited);
  const keyOf = (cap: string, shown: string) => digest(m.pathFree ? cap : `${cap}\0${shown}`);
  const open = async (cap: string, at: PathLink | undefined, key: Buffer, again: boolean): Promise<Frame> => {
    const children = await o.dirs.children(cap);
    const names = Object.keys(children).sort(byNameBytes);
    if (again) budget.count(names.length, encodePath(bytesOf(at)));
    return { cap, at, children, names, i: 0, again, hit: false, key };
  };
  const rootKey = keyOf(b.cap, '');
  if (noMatch.has(rootKey)) return;
  budget.enter(b.cap);
  const stack: Frame[] = [await open(b.cap, undefined, rootKey, false)];
  const onPath = new Set([b.cap]);
  while (stack.length) {
    const f = stack[stack.length - 1]!;
    if (f.i >= f.names.length) {
      stack.pop();
      onPath.delete(f.cap);
      if (!f.hit) noMatch.add(f.key);
      else if (stack.length) stack[stack.length - 1]!.hit = true;
      continue;
    }
    o.signal?.throwIfAborted();
    const name = f.names[f.i++]!;
    const child = f.children[name]!;
    const node = { path: [name], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} };
    const parent = f.at ? encodePath(bytesOf(f.at)) : '';
    const entry = interpret(node, parent);
    const at: PathLink = { name: entry.nameBytes.toString('latin1'), up: f.at };
    const bytes = bytesOf(at);
    // Escaped as ls prints it: the bytes on disk (a rawname), then queue-file escaping.
    const shown = encodePath(bytes);
    const hit: FindHit = {
      backup: b,
      path: shown,
      type: entry.kind,
      size: sizeOnDisk(node, entry, o.sizes),
      storedSize: entry.kind === 'dir' ? undefined : child.size,
      enc: entry.enc,
      mtimeNs: entry.mtimeNs,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
    };
    // Matched as printed and, for a name that is UTF-8, as it is (a top-level `#…` prints as `\x23…`, a newline as `\n`).
    const plain = isUtf8(bytes) ? bytes.toString('utf8') : shown;
    if ((m.matches(shown) || (plain !== shown && m.matches(plain))) && m.accepts(hit, o.unknownSizes)) {
      if (shown !== bytes.toString('utf8') || !isUtf8(bytes)) hit.pathBase64 = bytes.toString('base64');
      if (entry.kind !== 'dir' && child.ro_uri) hit.content = redact(child.ro_uri);
      f.hit = true;
      yield hit;
    }
    if (entry.kind !== 'dir' || !child.ro_uri || child.type !== 'dirnode') continue;
    if (onPath.has(child.ro_uri)) {
      o.onCycle?.(b, shown);
      continue;
    }
    const key = keyOf(child.ro_uri, shown);
    if (!(m.mayLeadTo(shown) || (plain !== shown && m.mayLeadTo(plain))) || noMatch.has(key)) continue;
    const before = budget.enter(child.ro_uri);
    stack.push(await open(child.ro_uri, at, key, before || f.again));
    onPath.add(child.ro_uri);
  }
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** An ISO 8601 time (UTC) to the nanosecond, from nanoseconds since the epoch. */
export function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n - (ns < 0n && ns % 1_000_000n !== 0n ? 1n : 0n);
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return new Date(Number(ms)).toISOString().replace(/\.\d{3}Z$/, `.${String(frac).padStart(9, '0')}Z`);
}

/** A hit as `find --json` prints it (the README's "JSON output"). */
export function hitJson(h: FindHit): Record<string, unknown> {
  return {
    name: h.backup.name,
    generation: h.backup.generation,
    time: h.backup.time === null ? null : new Date(h.backup.time * 1000).toISOString(),
    path: h.path,
    ...(h.pathBase64 !== undefined ? { path_base64: h.pathBase64 } : {}),
    type: h.type,
    size: h.type === 'dir' ? null : (h.size ?? null),
    stored_size: h.storedSize ?? null,
    enc: h.enc ?? null,
    mtime: h.mtimeNs === undefined ? null : isoNs(h.mtimeNs),
    mode: h.mode === undefined ? null : h.mode.toString(8),
    uid: h.uid ?? null,
    gid: h.gid ?? null,
    content: h.content ?? null,
  };
}
