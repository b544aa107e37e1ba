/**
 * Parses the streams of `t=stream-deep-check` and `t=stream-manifest`: one JSON object per
 * line, ending with a `{"type": "stats"}` line — or, when the gateway hits an unrecoverable
 * directory, with a plain-text `ERROR: …` line and a traceback (the status is still 200).
 *
 * Bounded: a line longer than LIMITS.streamLine fails the stream ('too-large'); of the ERROR
 * text, LIMITS.errorText is kept and the rest is not read.
 */
import { scrubCaps } from '../core/redact.js';
import { LIMITS, tooLarge } from './body.js';
import { TahoeError } from './errors.js';
import type { StreamUnit } from './types.js';

/** Failures that mean the stream broke off (the connection, a deadline, bad framing). */
const BROKE = new Set(['unavailable', 'timeout', 'malformed', 'truncated']);

/**
 * `body` yields the answer's chunks and throws typed errors (src/tahoe/body.ts chunksOf);
 * `onUnit` is called for each complete line (progress for the call's deadline).
 */
export async function* ndjsonUnits(body: AsyncIterable<Buffer>, op: string, onUnit: () => void = () => {}): AsyncIterable<StreamUnit> {
  let pending = '';
  let errorText: string | undefined;
  let sawStats = false;
  const decoder = new TextDecoder('utf-8');

  function* lines(final: boolean): Generator<StreamUnit> {
    let nl: number;
    while (errorText === undefined && (nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      onUnit();
      const unit = parseLine(line);
      if (unit) yield unit;
    }
    if (errorText === undefined && pending.length > LIMITS.streamLine.max) throw tooLarge(op, LIMITS.streamLine);
    if (final && errorText === undefined && pending.trim()) {
      const unit = parseLine(pending, true);
      pending = '';
      if (unit) yield unit;
    }
  }

  function parseLine(line: string, last = false): StreamUnit | undefined {
    if (!line.trim()) return undefined;
    if (line.startsWith('ERROR:')) {
      errorText = (line + '\n' + pending).slice(0, LIMITS.errorText.max);
      pending = '';
      return undefined;
    }
    let unit: StreamUnit;
    try {
      unit = JSON.parse(line) as StreamUnit;
    } catch {
      if (last) throw new TahoeError(op, 'truncated', 'the stream ended early (in the middle of a line): truncated answer');
      throw new TahoeError(op, 'protocol', `the gateway sent a line that is neither JSON nor ERROR: (${line.length} bytes)`);
    }
    if (!unit || typeof unit !== 'object' || typeof (unit as { type?: unknown }).type !== 'string') {
      throw new TahoeError(op, 'protocol', 'the gateway sent a JSON line without a type');
    }
    if (unit.type === 'stats') sawStats = true;
    return unit;
  }

  const chunks = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (e) {
        // The connection broke (or the deadline fired) in the middle of the answer: cut off.
        if (e instanceof TahoeError && BROKE.has(e.tahoeCode)) {
          throw new TahoeError(op, 'truncated', `the stream was cut off: ${e.detail}`, undefined, e);
        }
        throw e;
      }
      if (next.done) break;
      const chunk = next.value;
      if (errorText !== undefined) {
        errorText += decoder.decode(chunk, { stream: true });
        // The traceback is kept up to the limit; the rest is not read.
        if (errorText.length >= LIMITS.errorText.max) break;
        continue;
      }
      pending += decoder.decode(chunk, { stream: true });
      yield* lines(false);
    }
  } finally {
    await chunks.return?.();
  }
  pending += decoder.decode();
  yield* lines(true);
  if (errorText !== undefined) {
    const [first, ...rest] = (errorText + pending).slice(0, LIMITS.errorText.max).split('\n');
    yield { type: 'error', message: scrubCaps(first!.replace(/^ERROR:\s*/, '')), traceback: scrubCaps(rest.join('\n')) };
    return;
  }
  if (!sawStats) throw new TahoeError(op, 'truncated', 'the stream ended early (no stats line): truncated answer');
}
