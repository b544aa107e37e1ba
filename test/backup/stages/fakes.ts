/**
 * In-memory stand-ins for what the stages reach through their narrow interfaces (backup/ports.ts):
 * a grid that takes uploads and directories and can hold them until the test lets them go, and
 * a cache that answers from maps and records what it is told. Deterministic: nothing here
 * waits on a clock; a test waits on what happened (a call received, an event emitted).
 */
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { FileDecision, StoredAs } from '../../../src/cache/db.js';
import type { Child, EntryKind } from '../../../src/core/child.js';
import { encodingId, xzSettings } from '../../../src/core/xz.js';
import type { BackupEvent } from '../../../src/backup/events.js';
import type { DirMaker, StageCache, Uploader } from '../../../src/backup/ports.js';
import { EntryStat } from '../../../src/backup/source-stat.js';
import type { XzChoice } from '../../../src/backup/upload.js';
import type { QueueEntry } from '../../../src/scan/queue-codec.js';
import type { BodyFactory } from '../../../src/tahoe/client.js';

/** A promise with its resolvers. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

/** Resolves once `pred` holds, checked whenever `changed` is called; then after the current turn's microtasks. */
class Conditions {
  private waits: { pred: () => boolean; ok: () => void }[] = [];

  when(pred: () => boolean): Promise<void> {
    if (pred()) return new Promise((ok) => setImmediate(ok));
    return new Promise((ok) => this.waits.push({ pred, ok }));
  }

  changed(): void {
    this.waits = this.waits.filter((w) => {
      if (!w.pred()) return true;
      // After the microtasks the change set off: the code that emitted has reached its next wait.
      setImmediate(w.ok);
      return false;
    });
  }
}

async function drain(body: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The grid: each upload's body is read whole (as the gateway would), recorded, and — while
 * held — kept waiting until `release`. Honours the run's signal as the client does: a call
 * made after the abort, or waiting when it comes, fails with the abort's reason.
 */
export class FakeGrid implements Uploader, DirMaker {
  /** Bodies received, in order; a file's cap is `fake:file:INDEX`. */
  readonly files: Buffer[] = [];
  readonly dirs: Child[][] = [];
  /** Uploads finished (answered), by index. */
  readonly answered: number[] = [];
  private holding = false;
  private readonly gates: ReturnType<typeof deferred<void>>[] = [];
  private readonly cond = new Conditions();

  constructor(private readonly signal: AbortSignal) {}

  /** Later calls wait until released (in order of arrival). */
  hold(): void {
    this.holding = true;
  }

  /** Lets the waiting calls go (all, or the first `n`), and stops holding new ones when all go. */
  release(n = this.gates.length): void {
    for (const g of this.gates.splice(0, n)) g.resolve(undefined);
    if (!this.gates.length) this.holding = false;
  }

  /** Resolves once `n` uploads (and directories) have been received. */
  received(n: number): Promise<void> {
    return this.cond.when(() => this.files.length + this.dirs.length >= n);
  }

  async putFile(body: BodyFactory): Promise<string> {
    this.signal.throwIfAborted();
    const bytes = await drain(await body());
    const i = this.files.push(bytes) - 1;
    await this.wait();
    this.answered.push(i);
    return `fake:file:${i}`;
  }

  async mkdirImmutable(children: Child[]): Promise<string> {
    this.signal.throwIfAborted();
    const i = this.dirs.push(children.map((c) => ({ ...c }))) - 1;
    await this.wait();
    return `fake:dir:${i}`;
  }

  private async wait(): Promise<void> {
    this.cond.changed();
    if (this.holding) {
      this.signal.throwIfAborted();
      const g = deferred<void>();
      this.gates.push(g);
      const abort = () => g.reject(this.signal.reason);
      this.signal.addEventListener('abort', abort, { once: true });
      try {
        await g.promise;
      } finally {
        this.signal.removeEventListener('abort', abort);
      }
    }
    this.signal.throwIfAborted();
  }
}

interface Row {
  kind: EntryKind | 'listing';
  cap: string;
  ctimeNs?: bigint;
  sha256?: Buffer;
  enc?: StoredAs;
  xattrs?: string | null;
}

/** The entry cache as the stages see it: maps, and a record of every answer it was given. */
export class FakeCache implements StageCache {
  readonly rows = new Map<string, Row>();
  readonly told: { what: 'reuse' | 'upload' | 'list'; key: string; cap?: string }[] = [];
  /** Sizes for which mayKnowSize says yes (by default none: nothing stored yet). */
  readonly sizes = new Set<number>();

  fileDecision(key: Buffer, ctimeNs: bigint): FileDecision {
    const r = this.rows.get(key.toString('hex'));
    if (!r || r.kind !== 'file') return { action: 'upload' };
    if (r.ctimeNs === ctimeNs) return { action: 'reuse', cap: r.cap, enc: r.enc, xattrs: r.xattrs ?? null };
    return r.sha256 ? { action: 'rehash', cap: r.cap, sha256: r.sha256, enc: r.enc } : { action: 'upload' };
  }

  knownContent(sha256: Buffer): { cap: string; enc: StoredAs } | undefined {
    for (const r of this.rows.values()) if (r.sha256?.equals(sha256)) return { cap: r.cap, enc: r.enc ?? 'raw' };
    return undefined;
  }

  mayKnowSize(size: number): boolean {
    return this.sizes.has(size);
  }

  knownCap(key: Buffer, kind: 'symlink' | 'dir'): string | undefined {
    const r = this.rows.get(key.toString('hex'));
    return r?.kind === kind ? r.cap : undefined;
  }

  knownListing(key: Buffer): string | undefined {
    const r = this.rows.get(key.toString('hex'));
    return r?.kind === 'listing' ? r.cap : undefined;
  }

  didReuse(key: Buffer): void {
    this.told.push({ what: 'reuse', key: key.toString('hex') });
  }

  didUpload(key: Buffer, kind: EntryKind, cap: string, f?: { ctimeNs: bigint; sha256: Buffer; enc: StoredAs; xattrs?: string; size: number }): void {
    this.rows.set(key.toString('hex'), { kind, cap, ctimeNs: f?.ctimeNs, sha256: f?.sha256, enc: f?.enc, xattrs: f?.xattrs });
    this.told.push({ what: 'upload', key: key.toString('hex'), cap });
  }

  didList(key: Buffer, cap: string): void {
    this.rows.set(key.toString('hex'), { kind: 'listing', cap });
    this.told.push({ what: 'list', key: key.toString('hex'), cap });
  }

  /** Caps the stages stored in this cache. */
  get uploaded(): string[] {
    return this.told.filter((t) => t.what === 'upload').map((t) => t.cap!);
  }
}

/** Where the stages' events go, with waits on what they say. */
export class EventLog {
  readonly list: BackupEvent[] = [];
  private readonly cond = new Conditions();

  readonly sink = (e: BackupEvent): void => {
    this.list.push(e);
    this.cond.changed();
  };

  /** Resolves (after the current turn's microtasks) once the events so far satisfy `pred`. */
  when(pred: (events: readonly BackupEvent[]) => boolean): Promise<void> {
    return this.cond.when(() => pred(this.list));
  }

  /** Bytes read by hashing or comparing (not by an upload's stream). */
  hashed(): number {
    return this.list.reduce((n, e) => n + (e.type === 'read' && !e.upload ? e.bytes : 0), 0);
  }

  types(): string[] {
    return this.list.filter((e) => e.type !== 'read' && e.type !== 'sent' && e.type !== 'compressed').map((e) => e.type);
  }
}

/** xz off: files go up as they are (the tests read the bodies). */
export function rawXz(enabled = false): XzChoice {
  const settings = xzSettings({});
  return { policy: { enabled, minSize: 5120, rules: [], compressedNames: [], minSaving: 0.1 }, settings, id: encodingId(settings) };
}

/** The queue entry and phase 2's stat of `rel` under `root`, as the reader would give them. */
export function entryOf(root: string, rel: string): { e: QueueEntry; st: EntryStat } {
  const s = lstatSync(join(root, rel), { bigint: true });
  const st = new EntryStat(Number(s.mode), s.nlink, s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs, Number(s.uid), Number(s.gid));
  return { e: { path: Buffer.from(rel), uid: st.uid, gid: st.gid, mode: st.isSymbolicLink() ? null : st.mode }, st };
}
