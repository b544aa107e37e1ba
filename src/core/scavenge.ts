/**
 * Frees the buffers a stream of contents is done with, every 4 MiB it passes: a file read up
 * by a backup (backup/upload.ts), a file received by a restore (restore/fetch.ts) or a dump
 * (export/).
 *
 * Every chunk read from a file or from the gateway is a fresh buffer (1 MiB from a file, up to
 * 64 KiB from a socket; xz's output is fresh buffers too), dead as soon as it is sent or written
 * — and freed only when V8 next scavenges its young generation. V8 scavenges when the young
 * generation is full of *JavaScript* objects, which a stream makes few of per byte, or once
 * 32 MiB of buffers belong to it: ~30 MiB of dead buffers piled up between two scavenges (a
 * 64 MiB file dumped at 111 MiB peak RSS, 38 above the command at rest). Worse, V8 counts those
 * buffers against the old generation's limit, which the memory policy keeps at 20 % over what
 * is live (core/memory.ts): a 256 MiB upload set off a full collection every ~8 MiB (11 in
 * all, 0.3 s of CPU). So a stream asks for a scavenge itself every 4 MiB (counted where the
 * bytes come in: a compressible file deflated into a zip reads far more than it writes): the
 * pile is then bounded by that, whatever the machine. A scavenge of the young generation takes
 * ~1 ms (~0.25 s per GiB). With it: that dump peaks at 85 MiB (tar) and 93 MiB (zip); a 64 MiB
 * xz log at 89 and 91 MiB (it was 127); the 256 MiB upload (xz off) at 88 MiB (was 110), in
 * 1.2–1.6 s (was 1.9–2.3), with 69 scavenges and 5 full collections; its restore at 80–86 MiB
 * (was 113–118).
 *
 * The call is V8's own `gc({ type: 'minor' })`, exposed the documented way for a flag set at
 * run time (`v8.setFlagsFromString('--expose-gc')`, then the function from a new context, which
 * sees the flag); where it cannot be had, nothing is done (the stream is then only larger).
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

/** `n` more bytes were read (from a file to upload, downloaded, decoded, or read back from a spool); past every `EVERY` in all, one scavenge. */
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
