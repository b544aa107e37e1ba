/**
 * What the cache says about a file, before any work: its key (path, size, mtime, inode and the
 * encoding settings when the contents decide), the cache's decision (reuse, re-hash, upload),
 * and its user xattrs — remembered by a reused row, otherwise read now. An unchanged file is
 * answered here, synchronously, with its Child: that is the whole cost of an unchanged file
 * outside a listed directory. Anything else is a FilePlan for the file stage's job.
 */
import { fileKey } from '../cache/keys.js';
import type { FileDecision, StoredAs } from '../cache/db.js';
import { compressionChoice, keptXzBefore, type Choice } from '../core/compression.js';
import { childName, type Child } from '../core/child.js';
import { log, logs } from '../log.js';
import { baseName, encodePath, type QueueEntry } from '../scan/queue-codec.js';
import type { EventSink } from './events.js';
import { edgeMetadata, type EdgeExtras } from './meta.js';
import type { FileCache } from './ports.js';
import type { EntryStat } from './source-stat.js';
import type { XzChoice } from './upload.js';

/**
 * Extended metadata read at upload time (the metadata module's xattrs): undefined when there
 * are none, null when they could not be read (left out this time, not remembered).
 */
export type ReadXattrs = (abs: Buffer, st: { isSymbolicLink(): boolean }) => Record<string, string> | undefined | null;

const SLASH = Buffer.from('/');

export function absPath(root: Buffer, rel: Buffer): Buffer {
  return rel.length ? Buffer.concat([root, SLASH, rel]) : root;
}

/** A file's or symlink's Child; `row`: the cache row that now holds it as it is, if any. */
export function childOf(e: QueueEntry, cap: string, extras: EdgeExtras, row?: Buffer): Child {
  const { name, rawname } = childName(baseName(e.path));
  const child: Child = { name, type: 'filenode', cap, metadata: edgeMetadata(e, rawname ? { ...extras, rawname } : extras) };
  if (row) child.row = row;
  return child;
}

/** What planning needs: the file stage's options. */
export interface PlanDeps {
  root: Buffer;
  cache?: FileCache;
  xz: XzChoice;
  readXattrs?: ReadXattrs;
  emit: EventSink;
}

/** A file that needs work, and what the cache said about it. */
export class FilePlan {
  constructor(
    private readonly d: PlanDeps,
    private readonly e: QueueEntry,
    private readonly st: EntryStat,
    readonly choice: Choice,
    /** The cache row's key (the legacy one when that is the row that holds). */
    readonly key: Buffer,
    /** 'none' or the xz encoding id, as named in the key. */
    private readonly keyEnc: string,
    readonly decision: FileDecision,
    private readonly xattrs: Record<string, string> | undefined | null,
    /** The xattrs to remember in the row ('' for none); undefined when not to be kept. */
    readonly learnt: string | undefined,
    /** The edge is all there is to say: no link group, xattrs read (for `Child.row`). */
    readonly whole: boolean,
    private readonly hardlink?: string,
  ) {}

  /** The edge of the file stored as `enc` (undefined: as its key says), `size` plaintext bytes. */
  edge(enc: StoredAs | undefined, size: number): EdgeExtras {
    const xz = (enc ?? (this.keyEnc === 'none' ? 'raw' : this.keyEnc)).startsWith('xz');
    return { mtimeNs: this.st.mtimeNs, enc: xz ? 'xz' : undefined, size: xz ? size : undefined, xattrs: this.xattrs, hardlink: this.hardlink };
  }

  /** The file's cap as the cache has it (the cache has been told): its Child, and the event. */
  reused(why: 'unchanged' | 'rehashed'): Child {
    const d = this.decision as { cap: string; enc?: StoredAs };
    const size = Number(this.st.size);
    this.d.emit({ type: 'file-reused', path: this.e.path, size, why });
    if (logs('noise')) log.noise({ path: encodePath(this.e.path) }, why === 'unchanged' ? 'unchanged' : 'metadata changed, contents the same');
    return childOf(this.e, d.cap, this.edge(d.enc, size), this.whole ? this.key : undefined);
  }
}

/**
 * The cache's answer for a file: its Child when it is unchanged (the row is raised to this
 * generation), else the plan of the work. `hardlink`: the group's first path, for a member of
 * a hard-link group (its edge then depends on another entry: never a listing row).
 */
export function planFile(d: PlanDeps, e: QueueEntry, st: EntryStat, hardlink?: string): Child | FilePlan {
  const rel = `/${e.path.toString('utf8')}`;
  const policy = d.xz.policy;
  const choice = compressionChoice(policy, rel, Number(st.size));
  // The key names the xz settings only for files whose contents decide (as before
  // compressed_names existed, so rows of earlier runs still match).
  const identity = { path: e.path, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino };
  let keyEnc = choice === 'contents' ? d.xz.id : 'none';
  let key = fileKey({ ...identity, encoding: keyEnc });
  const cache = d.cache;
  let decision: FileDecision = cache ? cache.fileDecision(key, st.ctimeNs) : { action: 'upload' };
  if (decision.action === 'upload' && cache && keptXzBefore(policy, rel, Number(st.size))) {
    // Stored (as xz) by a run from before compressed_names: that row still holds.
    const legacy = fileKey({ ...identity, encoding: d.xz.id });
    const older = cache.fileDecision(legacy, st.ctimeNs);
    if (older.action !== 'upload') {
      decision = older;
      key = legacy;
      keyEnc = d.xz.id;
    }
  }
  // A reused row knows the file's user xattrs (its ctime is the same, so are they); otherwise
  // they are read, and remembered when read whole.
  const remembered = decision.action === 'reuse' && d.readXattrs ? fromRow(decision.xattrs) : null;
  const xattrs = remembered !== null ? remembered : d.readXattrs?.(absPath(d.root, e.path), st);
  const learnt = d.readXattrs && remembered === null ? toRow(xattrs) : undefined;
  // The edge is all there is to say about the file (no link group, xattrs read whole): only
  // then may a cache row stand for it in its directory's listing (Child.row).
  const whole = hardlink === undefined && xattrs !== null;
  const plan = new FilePlan(d, e, st, choice, key, keyEnc, decision, xattrs, learnt, whole, hardlink);
  if (decision.action !== 'reuse') return plan;
  cache!.didReuse(key, learnt === undefined ? undefined : { xattrs: learnt });
  return plan.reused('unchanged');
}

/** User xattrs as a file row keeps them: JSON, '' for none; undefined when not to be kept. */
function toRow(xattrs: Record<string, string> | undefined | null): string | undefined {
  if (xattrs === null) return undefined;
  return xattrs ? JSON.stringify(xattrs) : '';
}

/** A row's user xattrs; null when the row does not know them (or holds something else). */
function fromRow(text: string | null): Record<string, string> | undefined | null {
  if (text === null) return null;
  if (text === '') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')) return v as Record<string, string>;
  } catch {
    // not JSON: read them again
  }
  return null;
}
