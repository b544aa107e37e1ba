/**
 * Frees the buffers a dump is done with, every 4 MiB it streams.
 *
 * Every read from the gateway is a fresh buffer of up to 64 KiB (Node allocates one per socket
 * read; xz's output is fresh buffers too), dead as soon as it is written out — and freed only
 * when V8 next scavenges its young generation. V8 scavenges when the young generation is full
 * of *JavaScript* objects, and a dump makes few of those per byte: on a 2-core, 24 GB machine
 * ~30 MiB of dead buffers piled up between two scavenges (one 64 MiB file dumped at 111 MiB
 * peak RSS, 38 above the command at rest), and how many depends on the young generation's size,
 * which V8 takes from the machine's memory. So a dump asks for a scavenge itself every 4 MiB
 * it reads (counted where the bytes come in: a compressible file deflated into a zip reads far
 * more than it writes): the pile is then bounded by that, whatever the machine. A scavenge
 * of the young generation takes ~1 ms (~0.25 s per GiB dumped). With it, that file peaks at
 * 85 MiB (tar) and 93 MiB (zip); a 64 MiB xz log at 89 and 91 MiB (it was 127), a 32 MiB one
 * spooled at 87 (was 128).
 *
 * The call is V8's own `gc({ type: 'minor' })`, exposed the documented way for a flag set at
 * run time (`v8.setFlagsFromString('--expose-gc')`, then the function from a new context, which
 * sees the flag); where it cannot be had, nothing is done (the dump is then only larger).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const EVERY = 4 * 1024 * 1024;

type Gc = (o: { type: 'minor' }) => void;
let gc: Gc | null | undefined;

function scavenger(): Gc | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const f = runInNewContext('gc') as unknown;
      gc = typeof f === 'function' ? (f as Gc) : null;
    } catch {
      gc = null;
    }
  }
  return gc;
}

let since = 0;

/** `n` more bytes were read (downloaded, decoded, or read back from a spool); past every `EVERY` in all, one scavenge. */
export function passed(n: number): void {
  since += n;
  if (since < EVERY) return;
  since = 0;
  scavenger()?.({ type: 'minor' });
}

/** `src` as it is, counted (passed). */
export async function* scavenged(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const b of src) {
    passed(b.length);
    yield b;
  }
}
