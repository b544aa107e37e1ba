/**
 * Larger files uploaded without a pre-hash, and the files of the same size that meet them.
 *
 * A larger file is hashed before its upload only if something could have its contents: stored
 * contents of its size (the cache), or a file of its size going up unhashed in this run. For
 * the latter, the first block decides first: files whose first 64 KiB differ cannot be twins,
 * so files of one size with different contents (fixed-size chunks, a camera's raw photos) go
 * up side by side, each read once. Only a file whose first block matches one in flight is
 * hashed and waits for it, to take its cap if the contents are the same.
 */
import type { FileHandle } from 'node:fs/promises';
import { fromSourceAsync } from '../errors.js';
import type { UploadContext } from './context.js';
import type { UploadedContents } from './upload.js';

const HEAD = 64 * 1024;

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

/**
 * The files of one size in flight unhashed that may have this file's contents: those whose
 * first block is this file's (or can no longer be read: finished, their result decides).
 * `unseen()` is synchronous so that the caller can look one last time right before it acts:
 * from that look to registering itself (unhashedUpload) or hashing (and then `once`), nothing
 * awaits, so no same-size file slips in between.
 */
export class TwinSearch {
  readonly twins: Unhashed[] = [];
  private readonly seen = new Set<Unhashed>();
  private mine?: Promise<Buffer>;

  constructor(
    private readonly ctx: UploadContext,
    private readonly fh: FileHandle,
    private readonly shown: string,
    private readonly size: number,
  ) {}

  /** Same-size files in flight not compared yet. */
  unseen(): Unhashed[] {
    return [...(this.ctx.unhashed.get(this.size) ?? [])].filter((u) => !this.seen.has(u));
  }

  async compare(them: readonly Unhashed[]): Promise<void> {
    for (const u of them) this.seen.add(u);
    this.mine ??= fromSourceAsync(this.shown, () => readHead(this.fh, this.size));
    const [mine, theirs] = await Promise.all([this.mine, Promise.all(them.map((u) => u.head()))]);
    this.twins.push(...them.filter((_, i) => theirs[i] === undefined || theirs[i].equals(mine)));
  }
}

/** Of `twins`, one whose contents (SHA-256) are these and were read unchanged. */
export async function twinOf(sha256: Buffer, twins: readonly Unhashed[]): Promise<UploadedContents | undefined> {
  for (const up of await Promise.all(twins.map((t) => t.done))) if (up && !up.changed && up.sha256.equals(sha256)) return up;
  return undefined;
}

/**
 * Uploads a larger file unhashed, registered for same-size files to meet until the caller has
 * recorded its result in the cache (`forgetUnhashed`). Registered before the first await: a
 * twin arriving at any later moment finds it.
 */
export async function unhashedUpload(ctx: UploadContext, fh: FileHandle, size: number, send: () => Promise<UploadedContents>): Promise<UploadedContents> {
  let head: Promise<Buffer | undefined> | undefined;
  const p = send();
  const entry: Unhashed = { head: () => (head ??= readHead(fh, size).catch(() => undefined)), done: p.catch(() => undefined) };
  let same = ctx.unhashed.get(size);
  if (!same) ctx.unhashed.set(size, (same = new Set()));
  same.add(entry);
  try {
    return { ...(await p), unhashed: { size, entry } };
  } catch (e) {
    forgetUnhashed(ctx, size, entry);
    throw e;
  }
}

export function forgetUnhashed(ctx: UploadContext, size: number, entry: Unhashed): void {
  const same = ctx.unhashed.get(size);
  same?.delete(entry);
  if (same?.size === 0) ctx.unhashed.delete(size);
}
