/**
 * Contents in flight: the one owner of what this run is uploading right now, by SHA-256 and by
 * size, so that the same new contents go up once however many files have them.
 *
 * - By hash: a file whose contents (SHA-256) are being uploaded by another file waits for that
 *   upload and takes its cap (`once`).
 * - By size: a larger file goes up without a pre-hash when nothing could have its contents —
 *   no stored contents of its size (the cache), and no file of its size going up unhashed in
 *   this run. Files of one size meet here (`search`): the first block decides first, so files
 *   whose first 64 KiB differ (fixed-size chunks, a camera's raw photos) go up side by side,
 *   each read once; only a file whose first block matches one in flight is hashed and waits
 *   for it, to take its cap if the contents are the same.
 *
 * An upload stays registered until its caller has recorded the result in the cache
 * (`release`): dropped any earlier, a twin arriving in between would find neither and upload
 * again. Nothing outside this class reads or changes the two maps.
 */
import type { FileHandle } from 'node:fs/promises';
import type { StoredAs } from '../cache/db.js';
import { fromSourceAsync } from '../errors.js';
import type { Stored } from './events.js';

const HEAD = 64 * 1024;

/** What one file's contents became. */
export interface UploadedContents {
  cap: string;
  sha256: Buffer;
  /** The file changed while it was read: uploaded as read, not to be cached. */
  changed: boolean;
  /** 'raw' or the xz encoding id, as the cache records it. */
  enc: StoredAs;
  /** How it was stored, or 'known': found by its contents, nothing uploaded. */
  how: Stored | 'known';
  /** Plaintext bytes of the stored object. */
  size: number;
  /** Bytes its upload's stream reported as read (`read` events with `upload`); 0 when not streamed. */
  streamed: number;
  /** Its registration here, until `release`. */
  held?: Registration;
}

type Registration = { hash: string } | { size: number; entry: Unhashed };

/** A file going up unhashed: its first block (read when a same-size file asks), its result. */
export interface Unhashed {
  head(): Promise<Buffer | undefined>;
  done: Promise<UploadedContents | undefined>;
}

async function readHead(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(size, HEAD));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
    if (!bytesRead) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

export class ContentsInFlight {
  private readonly byHash = new Map<string, Promise<UploadedContents>>();
  private readonly bySize = new Map<number, Set<Unhashed>>();

  /**
   * Uploads contents once per run: a second file with the same contents while the first is
   * still being uploaded waits for it and takes its cap (how: 'known'). A first that changed
   * while read, or failed, proves nothing: the second sends its own.
   */
  async once(sha256: Buffer, send: () => Promise<UploadedContents>): Promise<UploadedContents> {
    const hash = sha256.toString('base64');
    const first = this.byHash.get(hash);
    if (first) {
      const done = await first.catch(() => undefined);
      if (done && !done.changed) return { ...done, how: 'known', streamed: 0, held: undefined };
      return send();
    }
    const p = send();
    this.byHash.set(hash, p);
    try {
      return { ...(await p), held: { hash } };
    } catch (e) {
      this.byHash.delete(hash);
      throw e;
    }
  }

  /**
   * Uploads a larger file unhashed, registered for same-size files to meet until `release`.
   * Registered before the first await: a twin arriving at any later moment finds it.
   */
  async unhashed(fh: FileHandle, size: number, send: () => Promise<UploadedContents>): Promise<UploadedContents> {
    let head: Promise<Buffer | undefined> | undefined;
    const p = send();
    const entry: Unhashed = { head: () => (head ??= readHead(fh, size).catch(() => undefined)), done: p.catch(() => undefined) };
    let same = this.bySize.get(size);
    if (!same) this.bySize.set(size, (same = new Set()));
    same.add(entry);
    try {
      return { ...(await p), held: { size, entry } };
    } catch (e) {
      this.forget(size, entry);
      throw e;
    }
  }

  /** The search for this file's twins among the same-size files going up unhashed. */
  search(fh: FileHandle, shown: string, size: number): TwinSearch {
    return new TwinSearch(() => this.bySize.get(size), fh, shown, size);
  }

  /** The file's result is in the cache (or deliberately not): a later twin finds it there now. */
  release(up: UploadedContents): void {
    const held = up.held;
    if (!held) return;
    if ('hash' in held) this.byHash.delete(held.hash);
    else this.forget(held.size, held.entry);
  }

  /** Contents registered now (by hash, by size): for tests and assertions that nothing is left. */
  get registered(): number {
    let n = this.byHash.size;
    for (const s of this.bySize.values()) n += s.size;
    return n;
  }

  private forget(size: number, entry: Unhashed): void {
    const same = this.bySize.get(size);
    same?.delete(entry);
    if (same?.size === 0) this.bySize.delete(size);
  }
}

/**
 * The files of one size in flight unhashed that may have this file's contents: those whose
 * first block is this file's (or can no longer be read: finished, their result decides).
 * `unseen()` is synchronous so that the caller can look one last time right before it acts:
 * from that look to registering itself (`unhashed`) or hashing (and then `once`), nothing
 * awaits, so no same-size file slips in between.
 */
export class TwinSearch {
  readonly twins: Unhashed[] = [];
  private readonly seen = new Set<Unhashed>();
  private mine?: Promise<Buffer>;

  constructor(
    private readonly inFlight: () => ReadonlySet<Unhashed> | undefined,
    private readonly fh: FileHandle,
    private readonly shown: string,
    private readonly size: number,
  ) {}

  /** Same-size files in flight not compared yet. */
  unseen(): Unhashed[] {
    return [...(this.inFlight() ?? [])].filter((u) => !this.seen.has(u));
  }

  async compare(them: readonly Unhashed[]): Promise<void> {
    for (const u of them) this.seen.add(u);
    this.mine ??= fromSourceAsync(this.shown, () => readHead(this.fh, this.size));
    const [mine, theirs] = await Promise.all([this.mine, Promise.all(them.map((u) => u.head()))]);
    this.twins.push(...them.filter((_, i) => theirs[i] === undefined || theirs[i].equals(mine)));
  }

  /** Of the twins found, one whose contents (SHA-256) are these and were read unchanged. */
  async twinOf(sha256: Buffer): Promise<UploadedContents | undefined> {
    for (const up of await Promise.all(this.twins.map((t) => t.done))) if (up && !up.changed && up.sha256.equals(sha256)) return up;
    return undefined;
  }
}
