/**
 * Imported by cli.ts before the rest of the bundle is evaluated: three settings that keep a
 * command's resident memory near what it actually uses, set from inside the process (Node's
 * start-up flags would need a second process, ~50 ms+ of boot per command).
 *
 * Why (issue 28.6: a million-entry backup under 150 MB). Measured on the 100,001-entry bench
 * tree (2-core, 24 GB machine; `/proc/PID/smaps_rollup`, `process.memoryUsage()` and
 * `v8.getHeapSpaceStatistics()` sampled every 0.5 s), a first backup peaked at 177–183 MiB:
 * ~47 MiB the node binary and addons mapped (file pages, not ours to shrink), 32 MiB V8's young
 * generation, up to 50–70 MiB V8's old generation of which 20–30 MiB live (the rest garbage
 * not yet collected), 6 MiB large objects (the bundle's source), and 25–50 MiB of malloc —
 * growing with the entries: 8 KiB blocks of Node's Buffer pool each kept alive by one small
 * slice (a deferred directory's queue path, held until its parent is done: ~1 block per
 * directory, 4.3 MiB for 546 directories in a heap snapshot). The unchanged rerun peaked at
 * 128 MiB with the same parts.
 *
 * - **Young generation capped at 8 MiB** (two 4 MiB semi-spaces). V8 sizes it from the
 *   machine's memory (16 MiB semi-spaces with 24 GB) and grows it to that maximum under a
 *   steady stream of short-lived objects (a walk, a queue line, a request): 32 MiB, most of it
 *   garbage, all of it resident. The maximum can only be set at start-up; the growth factor
 *   is read each time V8 would grow the space, so a GC observer turns growth off (factor 1)
 *   while the young generation is at the cap and back on (2) below it (V8 shrinks it when
 *   allocation is slow, e.g. waiting on a gateway). The observer runs after the collection, so
 *   a burst of survivors can take it one step further (16 MiB under test/cli/memory.test.ts's
 *   probe); a backup stays at 8. Not smaller: with 1–2 MiB semi-spaces more objects survive
 *   into the old generation and the rerun's peak went up (129 → 139 MiB).
 *   `dump` keeps its own, stricter rule (young-generation.ts: growth off from the start).
 * - **Old generation grown by 20 % over what a full GC left live**, not by V8's own factor
 *   (which goes up to 4 × for a fast allocator): garbage stopped piling up to two or three
 *   times the live heap between full collections (old space 50–70 MiB with 20–30 live). More
 *   frequent full GCs on a heap of 20–30 MiB live; marking is concurrent. V8 counts live
 *   Buffers against that limit too, so a stream of contents asks for scavenges as it goes
 *   (core/scavenge.ts): otherwise its dead chunks set off a full collection every ~8 MiB.
 *   Not for `dump`: its streams keep promoting buffers into the old generation (the 1 GiB
 *   bench tree as a zip: 243 full collections under the rule, 11 without; 25.6–26.5 s instead
 *   of 23.3–24.3), and its own rules keep it under its 150 MB target (zip 131–139 MiB; 100–114
 *   with this one).
 * - **Buffer pool blocks of 1 KiB** (`Buffer.poolSize`, documented as changeable; Node's
 *   default 8 KiB). Small Buffers (< half the pool) are slices of a shared block, and one live
 *   slice keeps its whole block: a small Buffer kept long — a queue path held until a
 *   directory's parent is done, a listing key (cache/keys.ts gives those their own memory) —
 *   keeps 8 KiB, so 10,000 directories kept ~80 MB at a million entries. With 1 KiB blocks a
 *   kept slice costs at most 1 KiB; a block is allocated 8 × as often (an allocation per ~1
 *   KiB of small Buffers: not measurable).
 *
 * Measured with the three (bench tree, same machine, in turns): 100k first backup 183 → 113
 * MiB, 100k unchanged rerun 128 → 101 MiB, the rerun's time unchanged within noise. README,
 * "Decisions where the contract is silent" (memory) has the million-entry figures.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** V8's young generation (both semi-spaces) is not grown beyond this. */
export const YOUNG_GENERATION_CAP = 8 * 1024 * 1024;
/** After a full GC the old generation may grow by this much of what it left live before the next. */
export const OLD_GENERATION_GROWTH_PERCENT = 20;
/** Node's Buffer pool block (bytes): what one long-kept small Buffer can keep alive. */
export const BUFFER_POOL_SIZE = 1024;

function youngGeneration(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Keeps the young generation at most `cap` bytes: growth off at the cap, on below it. Set
 * again after every collection, not only when it changes: V8 puts the factor back to 2 when
 * it configures another heap (a worker thread's, e.g. a log transport's), and the flag is the
 * process's.
 */
function capYoungGeneration(cap: number): void {
  const check = (): void => setFlagsFromString(`--semi-space-growth-factor=${youngGeneration() < cap ? 2 : 1}`);
  check();
  // Not a handle: it keeps no command alive.
  new PerformanceObserver(check).observe({ entryTypes: ['gc'] });
}

export function limitMemory(argv: readonly string[]): void {
  Buffer.poolSize = BUFFER_POOL_SIZE;
  if (argv.includes('dump')) return;
  setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`);
  capYoungGeneration(YOUNG_GENERATION_CAP);
}

limitMemory(process.argv.slice(2));
