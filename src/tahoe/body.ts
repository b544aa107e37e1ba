/**
 * Reading answers with a size limit. Every answer is read through here, with the limit of its
 * kind: an answer past it fails that call as the gateway's error ('too-large', not retried)
 * and the connection is dropped, so memory stays bounded whatever a gateway sends.
 */
import type { Dispatcher } from 'undici';
import { type Attempt, MiB } from './attempt.js';
import { TahoeError } from './errors.js';

export interface BodyLimit {
  /** Bytes at most. */
  max: number;
  /** What the answer is, for the error line ("a cap"). */
  what: string;
}

const KiB = 1024;

/** The limits of each kind of answer (README, "Decisions where the contract is silent"). */
export const LIMITS = {
  /** PUT /uri, mkdir, mkdir-immutable, PUT ?t=uri: a cap (under 300 bytes for every kind). */
  cap: { max: 4 * KiB, what: 'a cap' },
  /** GET ?t=json of a node: a directory listing (~600 bytes per child; 256 MiB ≈ 400,000 children). */
  listing: { max: 256 * MiB, what: 'a directory listing (?t=json)' },
  /** GET /?t=json: the welcome page (~400 bytes per storage server). */
  welcome: { max: 1 * MiB, what: "the gateway's welcome page (?t=json)" },
  /** DELETE of a child: an empty or short text answer. */
  small: { max: 64 * KiB, what: 'the answer to an unlink' },
  /** One line of a deep-check or manifest stream (~2 KiB for a node's check results). */
  streamLine: { max: 1 * MiB, what: 'a line of a deep-check or manifest stream' },
  /** An error page, and the ERROR: text at the end of a stream: read this much, drop the rest. */
  errorText: { max: 64 * KiB, what: 'an error page' },
} satisfies Record<string, BodyLimit>;

export function tooLarge(op: string, limit: BodyLimit): TahoeError {
  return new TahoeError(op, 'too-large', `the gateway's answer is longer than ${limit.what} can be (more than ${size(limit.max)}): not an answer of a Tahoe-LAFS gateway`);
}

function size(n: number): string {
  return n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`;
}

/** The answer's Content-Length, if it gave one. */
export function contentLength(res: Dispatcher.ResponseData): number | undefined {
  const v = res.headers['content-length'];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return v !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The answer's chunks as they come, at most `limit.max` bytes in all (a longer answer fails,
 * 'too-large'); each complete MiB is progress for the attempt's deadline, and a failure while
 * reading is typed by the attempt. Ending early (break, or the limit) drops the connection.
 */
export async function* chunksOf(res: Dispatcher.ResponseData, a: Attempt, op: string, limit: BodyLimit, where?: string): AsyncGenerator<Buffer> {
  const body = res.body as unknown as AsyncIterable<Buffer> & { destroy(): void };
  let done = false;
  try {
    const declared = contentLength(res);
    if (declared !== undefined && declared > limit.max) throw tooLarge(op, limit);
    let total = 0;
    let sinceUnit = 0;
    const it = body[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await it.next();
      } catch (e) {
        throw a.typed(op, e, where) ?? e;
      }
      if (next.done) break;
      const chunk = next.value;
      total += chunk.length;
      if (total > limit.max) throw tooLarge(op, limit);
      sinceUnit += chunk.length;
      if (sinceUnit >= MiB) {
        sinceUnit %= MiB;
        a.progress();
      }
      yield chunk;
    }
    done = true;
  } finally {
    if (!done) body.destroy();
  }
}

/** The whole answer as text, within `limit`. */
export async function readText(res: Dispatcher.ResponseData, a: Attempt, op: string, limit: BodyLimit, where?: string): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of chunksOf(res, a, op, limit, where)) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

/** At most `max` bytes of an answer whose rest does not matter (an error page); never fails. */
export async function readSome(res: Dispatcher.ResponseData, max: number): Promise<string> {
  const body = res.body as unknown as AsyncIterable<Buffer> & { destroy(): void };
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      parts.push(c);
      n += c.length;
      if (n >= max) break; // leaving the loop destroys the body: the rest is not read
    }
  } catch {
    // What came before the failure is all there is to say.
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}
