/**
 * Parses the streams of `t=stream-deep-check` and `t=stream-manifest`: one JSON object per
 * line, ending with a `{"type": "stats"}` line — or, when the gateway hits an unrecoverable
 * directory, with a plain-text `ERROR: …` line and a traceback (the status is still 200).
 */
import { scrubCaps } from './caps.js';
import { TahoeError, toTahoeError } from './errors.js';
import type { StreamUnit } from './types.js';

export async function* ndjsonUnits(body: AsyncIterable<Buffer>, op: string): AsyncIterable<StreamUnit> {
  let pending = '';
  let errorText: string | undefined;
  let sawStats = false;
  const decoder = new TextDecoder('utf-8');

  function* lines(final: boolean): Generator<StreamUnit> {
    let nl: number;
    while (errorText === undefined && (nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      const unit = parseLine(line);
      if (unit) yield unit;
    }
    if (final && errorText === undefined && pending.trim()) {
      const unit = parseLine(pending, true);
      pending = '';
      if (unit) yield unit;
    }
  }

  function parseLine(line: string, last = false): StreamUnit | undefined {
    if (!line.trim()) return undefined;
    if (line.startsWith('ERROR:')) {
      errorText = line + '\n' + pending;
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
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (e) {
      // The connection broke in the middle of the answer: the stream is cut off.
      throw new TahoeError(op, 'truncated', `the stream was cut off: ${toTahoeError(op, e)?.message.slice(op.length + 2) ?? (e as Error).message}`, undefined, e);
    }
    if (next.done) break;
    const chunk = next.value;
    if (errorText !== undefined) {
      errorText += decoder.decode(chunk, { stream: true });
      continue;
    }
    pending += decoder.decode(chunk, { stream: true });
    yield* lines(false);
  }
  pending += decoder.decode();
  yield* lines(true);
  if (errorText !== undefined) {
    const [first, ...rest] = (errorText + pending).split('\n');
    yield { type: 'error', message: scrubCaps(first!.replace(/^ERROR:\s*/, '')), traceback: scrubCaps(rest.join('\n')) };
    return;
  }
  if (!sawStats) throw new TahoeError(op, 'truncated', 'the stream ended early (no stats line): truncated answer');
}
