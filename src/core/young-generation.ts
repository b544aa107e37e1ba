/**
 * Imported first by cli.ts, so that it runs before the rest of the bundle is evaluated: for
 * `dump`, V8's young generation is kept at the size start-up left it (2 MiB semi-spaces here)
 * instead of growing to the size V8 takes from the machine's memory (16 MiB semi-spaces on a
 * 24 GB machine: 32 MiB of young generation, most of it garbage, all of it resident).
 *
 * Why: a dump of many small files makes a steady stream of short-lived objects (a request, its
 * answer, the file's buffer, its listing entry) at a rate that makes V8 grow the young
 * generation to its maximum. Measured with the dump bench's 20,000 files of 4 KiB (2-core,
 * 24 GB machine): peak RSS 142 → 128 MiB (tar), 163 → 137 MiB (zip), the same speed within
 * noise. (Large files are core/scavenge.ts's business.) Set only once the bundle had been
 * evaluated, part of the gain was lost. It is not a heap cap: the old generation is untouched.
 * The growth factor is read each time V8 would grow the space, so a flag set at run time takes
 * effect, as `--liftoff-only` in cli.ts does. Other commands are left as they were.
 */
import { setFlagsFromString } from 'node:v8';

if (process.argv.slice(2).includes('dump')) setFlagsFromString('--semi-space-growth-factor=1');
