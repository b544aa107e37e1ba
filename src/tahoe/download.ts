/**
 * A download that resumes where it broke off. When the answer breaks (the connection, a
 * deadline, bad framing), the rest is asked for with `Range: bytes=N-` — a Tahoe-LAFS gateway
 * answers 206 with `Content-Range: bytes N-END/TOTAL` (test/fixtures/tahoe-webapi/03) — within
 * the retry budget; the consumer sees one unbroken sequence of chunks. An attempt that brought
 * a MiB or more starts the budget again, so a long download on a flaky line finishes while a
 * gateway that breaks every answer at once still fails after the budget.
 */
import type { Dispatcher } from 'undici';
import { type Attempt, MiB } from './attempt.js';
import { chunksOf, contentLength, type BodyLimit } from './body.js';
import { TahoeError } from './errors.js';

export interface Opened {
  res: Dispatcher.ResponseData;
  a: Attempt;
}

export interface ResumeOptions {
  op: string;
  where: string;
  /** The first answer (status 200), already received. */
  first: Opened;
  /** The size the cap states (CHK, LIT): the most that is read. */
  capSize?: number;
  /** Opens the contents from byte `from` (a Range request when from > 0). */
  open: (from: number) => Promise<Opened>;
  /** After failure number `n` (from 0): throws the final error, or waits for the next try. */
  failed: (err: unknown, a: Attempt | undefined, n: number) => Promise<void>;
  succeeded: () => void;
}

/** The object's whole length from an answer: Content-Range's total (206) or Content-Length (200). */
function totalOf(res: Dispatcher.ResponseData): number | undefined {
  if (res.statusCode === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
    return m ? Number(m[3]) : undefined;
  }
  return contentLength(res);
}

/**
 * How many bytes of this answer to drop before the first new one: 0 for a 206 that starts at
 * `from`; `from` for a 200 (a gateway that ignored the Range sends everything again).
 */
function skipOf(op: string, res: Dispatcher.ResponseData, from: number, total: number | undefined): number {
  const t = totalOf(res);
  if (total !== undefined && t !== undefined && t !== total) {
    throw new TahoeError(op, 'protocol', `the download changed length when resumed (${total} bytes, then ${t})`);
  }
  if (res.statusCode !== 206) return from;
  const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
  if (!m || Number(m[1]) !== from) {
    throw new TahoeError(op, 'protocol', `the gateway resumed the download at the wrong place (asked for byte ${from}, got ${JSON.stringify(String(res.headers['content-range'] ?? 'no Content-Range'))})`);
  }
  return 0;
}

export async function* resumeDownload(o: ResumeOptions): AsyncGenerator<Buffer> {
  let current: Opened | undefined = o.first;
  const total = o.capSize ?? totalOf(o.first.res);
  let received = 0;
  let skip = 0;
  let n = 0;
  let done = false;
  try {
    for (;;) {
      const before = received;
      let a = current?.a;
      try {
        if (!current) {
          current = await o.open(received);
          a = current.a;
          skip = received > 0 ? skipOf(o.op, current.res, received, total) : 0;
        }
        // At most what the cap states is left to come (plus what a 200 sends again).
        const limit: BodyLimit = {
          max: o.capSize === undefined ? Number.MAX_SAFE_INTEGER : o.capSize - received + skip,
          what: `the file (its cap says ${o.capSize} bytes)`,
        };
        for await (let chunk of chunksOf(current.res, current.a, o.op, limit, o.where)) {
          if (skip > 0) {
            const s = Math.min(skip, chunk.length);
            chunk = chunk.subarray(s);
            skip -= s;
            if (!chunk.length) continue;
          }
          received += chunk.length;
          yield chunk;
        }
        done = true;
        current.a.end();
        o.succeeded();
        return;
      } catch (err) {
        current = undefined;
        if (received - before >= MiB) n = 0;
        // Only a broken exchange is resumed: failed() throws a 4xx, a size past the cap, a local failure.
        await o.failed(err, a, n++);
      }
    }
  } finally {
    if (!done) current?.a.end(true);
  }
}
