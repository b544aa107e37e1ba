/**
 * xz decoding in bounded memory, for streams read from the grid (dump, restore).
 *
 * lzma-native's stream decodes each chunk written to it whole and pushes all of its output
 * without waiting for the reader: one 64 KiB chunk of a very compressible file (zeros, a disk
 * image: up to some thousand times smaller) becomes hundreds of megabytes at once, and a 64 MiB
 * log file came out at 440 MB peak RSS. So the input is handed over in slices sized by the
 * ratio seen so far (aiming at 1 MiB of output a slice; between 512 bytes and 64 KiB of input), and
 * the next slice goes in only when the reader has taken all the output of the one before.
 *
 * The decoder runs on the calling thread (lzma-native's synchronous mode): each slice is awaited
 * before the next anyway, so a worker thread bought no overlap, and what it allocated came from
 * its own glibc malloc arena, which keeps its pages: a dump of one 64 MiB xz log peaked at
 * 127 MiB RSS decoded on a worker, 118.5 MiB here (a 32 MiB one spooled: 128 → 114.5).
 */
import { createUnxz } from '../core/xz.js';
import { EntryError } from './dest.js';

/** The stream is marked xz and is not (or is cut): that entry's trouble. */
export class UndecodableError extends EntryError {
  constructor(readonly reason: string) {
    super(`its contents are marked xz but do not decode (${reason})`);
  }
}

const OUT_PER_SLICE = 1 << 20;
const MIN_SLICE = 512;
const MAX_SLICE = 64 * 1024;

/** `src` decoded; the source's own errors (a short download, the gateway's) pass through as they are. */
export async function* unxz(src: AsyncIterable<Buffer>, opts: { synchronous?: boolean } = {}): AsyncGenerator<Buffer> {
  const d = createUnxz(opts);
  const out: Buffer[] = [];
  let failed: Error | undefined;
  let ended = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  d.on('data', (c: Buffer) => out.push(c));
  d.on('error', (e: Error) => {
    failed ??= e;
    wake();
  });
  d.on('end', () => {
    ended = true;
    wake();
  });
  /** Writes `piece` (or ends the input) and waits until it has been decoded, or the decoder failed. */
  const feed = (piece: Buffer | undefined) =>
    new Promise<void>((ok) => {
      waiters.push(ok);
      const done = () => {
        const k = waiters.indexOf(ok);
        if (k >= 0) waiters.splice(k, 1);
        ok();
      };
      if (piece) d.write(piece, done);
      else d.end();
    });
  let taken = 0;
  let given = 0;
  try {
    for await (const chunk of src) {
      for (let i = 0; i < chunk.length; ) {
        // Until a ratio is seen, the smallest slice (the first of a stream of zeros is thousands of times its size).
        const ratio = taken ? Math.max(1, given / taken) : OUT_PER_SLICE / MIN_SLICE;
        const n = Math.min(MAX_SLICE, Math.max(MIN_SLICE, Math.floor(OUT_PER_SLICE / ratio)));
        const piece = chunk.subarray(i, i + n);
        i += piece.length;
        await feed(piece);
        if (failed) throw new UndecodableError(failed.message);
        taken += piece.length;
        while (out.length) {
          const b = out.shift()!;
          given += b.length;
          yield b;
        }
      }
    }
    if (!ended && !failed) await feed(undefined);
    while (!ended && !failed) await new Promise<void>((ok) => waiters.push(ok));
    if (failed) throw new UndecodableError(failed.message);
    while (out.length) yield out.shift()!;
  } finally {
    d.destroy();
  }
}
