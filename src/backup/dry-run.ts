/**
 * `backup --dry-run`: the same stages behind stand-ins that send and record nothing.
 *
 * - `DryRunGrid` takes the uploads and the directories: it reads each upload's body to its end,
 *   as the gateway would (so the file is read, hashed and compressed exactly as in a real run,
 *   and every count — bytes read, compressed, to be sent — is the real run's), and answers
 *   with a placeholder that is no cap. No request is made.
 * - `DryRunCache` answers the stages' questions from the entry cache as it is (opened read-only,
 *   or none), and remembers in memory what this run would have recorded, so that contents
 *   shared by two new files count once, as they would. It writes nothing. What it remembers is
 *   bounded (REMEMBERED); past that, later twins of new contents count as uploads.
 */
import type { Readable } from 'node:stream';
import type { FileDecision, StoredAs } from '../cache/db.js';
import type { EntryKind } from '../core/child.js';
import type { BodyFactory } from '../tahoe/client.js';
import type { DirMaker, StageCache, Uploader } from './ports.js';

/** Entries the dry run remembers at most (about 100 bytes each). */
export const REMEMBERED = 250_000;

export class DryRunGrid implements Uploader, DirMaker {
  private made = 0;

  async putFile(body: BodyFactory): Promise<string> {
    const b = await body();
    if (!Buffer.isBuffer(b)) for await (const _ of b as Readable);
    return `dry-run:file:${++this.made}`;
  }

  mkdirImmutable(): Promise<string> {
    return Promise.resolve(`dry-run:dir:${++this.made}`);
  }
}

export class DryRunCache implements StageCache {
  private readonly contents = new Map<string, { cap: string; enc: StoredAs }>();
  private readonly sizes = new Set<number>();
  private readonly caps = new Map<string, string>();

  /** `base`: the entry cache as it is, read-only; undefined when there is none yet. */
  constructor(private readonly base?: Omit<StageCache, 'didReuse' | 'didUpload' | 'didList'>) {}

  fileDecision(key: Buffer, ctimeNs: bigint): FileDecision {
    return this.base?.fileDecision(key, ctimeNs) ?? { action: 'upload' };
  }

  knownContent(sha256: Buffer, prefer: StoredAs): { cap: string; enc: StoredAs } | undefined {
    return this.contents.get(sha256.toString('base64')) ?? this.base?.knownContent(sha256, prefer);
  }

  mayKnowSize(size: number): boolean {
    return this.sizes.has(size) || (this.base?.mayKnowSize(size) ?? false);
  }

  knownCap(key: Buffer, kind: 'symlink' | 'dir'): string | undefined {
    return this.caps.get(key.toString('base64')) ?? this.base?.knownCap(key, kind);
  }

  knownListing(key: Buffer): string | undefined {
    return this.base?.knownListing(key);
  }

  didReuse(): void {}

  didUpload(key: Buffer, kind: EntryKind, cap: string, f?: { sha256: Buffer; enc: StoredAs; size: number }): void {
    if (this.contents.size + this.caps.size >= REMEMBERED) return;
    // A file's own key is never asked again in a run (each path comes once): only what others may ask.
    if (f) {
      this.contents.set(f.sha256.toString('base64'), { cap, enc: f.enc });
      this.sizes.add(f.size);
    } else if (kind !== 'file') this.caps.set(key.toString('base64'), cap);
  }

  didList(): void {}
}
