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
 * The files of this size in flight unhashed that may have these contents: those whose first
 * block is this file's (or could not be read any more: finished, their result decides).
 */
export async function possibleTwins(ctx: UploadContext, fh: FileHandle, shown: string, size: number): Promise<Unhashed[]> {
  const inFlight = [...(ctx.unhashed.get(size) ?? [])];
  if (!inFlight.length) return [];
  const mine = await fromSourceAsync(shown, () => readHead(fh, size));
  const theirs = await Promise.all(inFlight.map((u) => u.head()));
  return inFlight.filter((_, i) => theirs[i] === undefined || theirs[i].equals(mine));
}

/** Of `twins`, one whose contents (SHA-256) are these and were read unchanged. */
export async function twinOf(sha256: Buffer, twins: readonly Unhashed[]): Promise<UploadedContents | undefined> {
  for (const up of await Promise.all(twins.map((t) => t.done))) if (up && !up.changed && up.sha256.equals(sha256)) return up;
  return undefined;
}

/**
 * Uploads a larger file unhashed, registered for same-size files to meet until the caller has
 * recorded its result in the cache (`forgetUnhashed`). Registered before the first await: a
 * twin arriving at any later moment finds it. (Two twins that both differ from a third file in
 * flight and arrive while comparing first blocks can both go up: a second upload, never a
 * wrong cap.)
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
