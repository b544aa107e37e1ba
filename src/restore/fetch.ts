/**
 * One entry's contents from the grid, checked against the listing: the bytes received must be
 * the size the parent directory gives (the stored size: compressed for xz) — no fewer (a body
 * answered short with a consistent Content-Length ends cleanly, and would be half the file)
 * and no more (reading stops at the first byte past it). An xz stream must also reach its
 * proper end: lzma-native fails a truncated stream ("No progress is possible") rather than
 * ending silently, and the stream's own index checks the decompressed size.
 *
 * A mismatch is a `SizeMismatch`; `refetching` downloads the entry again, as the client's retry
 * policy allows (its number of attempts and its delays), and a mismatch that persists is that
 * entry's failure: a warning naming it, the rest of the restore goes on, exit 3.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { scavenged } from '../core/scavenge.js';
import { unxz, UndecodableError } from './unxz.js';
import type { TahoeClient } from '../tahoe/client.js';
import { log } from '../log.js';
import { EntryError, SparseWriter } from './dest.js';

export interface RetryPolicy {
  /** Downloads after the first (the client's `http.retry.attempts`). */
  attempts: number;
  /** Seconds before each; the last repeats (the client's `http.retry.delay`). */
  delays: number[];
}

/** The bytes received differ from the size the listing gives. */
export class SizeMismatch extends EntryError {
  constructor(
    readonly received: number,
    readonly expected: number,
  ) {
    super(received < expected ? `the gateway sent ${received} of its ${expected} bytes` : `the gateway sent more than its ${expected} bytes`);
  }
}

/**
 * The contents of `cap`, chunk by chunk, checked against `expected` (the listing's size;
 * undefined: nothing to check against) and never more than `limit` bytes. `onBytes` is told
 * the size of each chunk as it passes.
 */
export async function* checkedDownload(client: TahoeClient, cap: string, expected: number | undefined, onBytes?: (n: number) => void, limit = Number.POSITIVE_INFINITY): AsyncGenerator<Buffer> {
  const body = await client.downloadChunks(cap);
  const most = Math.min(expected ?? Number.POSITIVE_INFINITY, limit);
  let received = 0;
  // Breaking out of the loop (a throw) ends the request.
  for await (const chunk of body) {
    received += chunk.length;
    if (received > most) throw expected !== undefined && received > expected ? new SizeMismatch(received, expected) : new EntryError(`its contents are longer than ${limit} bytes; skipped`);
    onBytes?.(chunk.length);
    yield chunk;
  }
  if (expected !== undefined && received !== expected) throw new SizeMismatch(received, expected);
}

/**
 * Downloads `cap` into the open file `fd` (xz-decoded when `xz`), checked as `checkedDownload`
 * checks; resolves with the number of bytes written.
 */
export async function writeContents(client: TahoeClient, cap: string, expected: number | undefined, xz: boolean, fd: number, onBytes?: (n: number) => void): Promise<number> {
  const body = checkedDownload(client, cap, expected, onBytes);
  const sink = new SparseWriter(fd);
  if (xz) {
    // Decoded in slices the writes keep up with (unxz.ts: lzma-native alone pushes a
    // chunk's whole output at once). A short or long answer is reported as such; a stream
    // that does not decode is that entry's trouble, not the restore's.
    try {
      for await (const chunk of scavenged(unxz(body))) sink.write(chunk);
      sink.finish();
    } catch (e) {
      throw e instanceof UndecodableError ? new EntryError(`${e.message}; skipped`) : e;
    }
  } else {
    // Plain contents go straight from the socket to the file: no stream stages per file.
    // Counted as they pass (core/scavenge.ts): the dead socket buffers are freed as they go.
    for await (const chunk of scavenged(body)) sink.write(chunk);
    sink.finish();
  }
  return sink.size;
}

/**
 * Runs `attempt` (one whole download of the entry `shown`), again while it fails with a
 * SizeMismatch and the policy allows; the last mismatch names how many downloads were made.
 * `attempt` gets its number (0 first); each starts from nothing (a fresh temporary file).
 */
export async function refetching<T>(shown: string, policy: RetryPolicy, signal: AbortSignal, attempt: (n: number) => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      if (!(e instanceof SizeMismatch)) throw e;
      if (n >= policy.attempts) throw new EntryError(`${e.message} (${n + 1} download${n ? 's' : ''}); skipped`);
      const delays = policy.delays.length ? policy.delays : [0];
      const delay = delays[Math.min(n, delays.length - 1)]!;
      log.warn(`${JSON.stringify(shown)}: ${e.message}; downloading it again in ${delay} s (up to ${policy.attempts} times)`);
      await sleep(delay * 1000, undefined, { signal }).catch(() => {
        throw signal.reason;
      });
    }
  }
}
