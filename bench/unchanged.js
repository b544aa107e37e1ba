// The unchanged night: a backup of a tree that did not change since the last one, against the
// walk's floor — `find` printing the facts a queue line holds, over the same tree, in the same
// run (taken in turns with our runs, so the machine's load hits both alike).
//
//   npm run bench -- unchanged      the 100,001-entry tree (1,000 directories × 99 files)
//   npm run bench -- unchanged-1m   the 1,000,001-entry tree: peak RSS of the first backup and
//                                   of the rerun (the first backup takes minutes: not in the
//                                   default set)
//
// Peak RSS is the CLI process's VmHWM (lib.js run: polled from /proc/PID/status).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI, fmt, fresh, generateTree, interleaved, run, startGridProcess } from './lib.js';

export const name = 'unchanged';

const FIND_FORMAT = '%p %U:%G:%m %s %T@\n';

function config(dir, source, url) {
  const cfg = join(dir, 'bench.yaml');
  writeFileSync(cfg, `source: {path: ${source}, queue: {path: ${join(dir, 'queue.txt')}}, entry_cache: {path: ${join(dir, 'cache.db')}}}\ndestination: {url: '${url}'}\n`);
  return cfg;
}

/** A first backup of `dirs` × 99 files, then `n` unchanged reruns in turns with `find -printf`. */
export async function unchanged(dirs, n) {
  const tree = generateTree(dirs === 1000 ? 'tree-100k' : `tree-${dirs}x99`, dirs, 99);
  const dir = join(BENCH_DIR, `unchanged-${dirs}x99`);
  mkdirSync(dir, { recursive: true });
  // LAFS_BENCH_GRID=URL: an embedded grid already running (`lafs-backup grid`), kept between
  // bench runs, so that LAFS_BENCH_KEEP_CACHE=1 can skip the first backup.
  const url = process.env.LAFS_BENCH_GRID;
  const grid = url ? { url, stop: () => {} } : await startGridProcess();
  try {
    const cfg = config(dir, tree, grid.url);
    // LAFS_BENCH_KEEP_CACHE=1 (with LAFS_BENCH_GRID): the cache of an earlier run stands.
    const keep = process.env.LAFS_BENCH_KEEP_CACHE === '1' && existsSync(join(dir, 'cache.db'));
    if (!keep) fresh(dir);
    const first = keep ? undefined : await run(process.execPath, [CLI, '-c', cfg, 'backup']);
    // The first rerun records the listings the first backup could not (its files were new).
    await run(process.execPath, [CLI, '-c', cfg, 'backup']);
    const [find, again] = await interleaved(
      n,
      () => run('find', [tree, '-printf', FIND_FORMAT], { stdout: 'ignore' }),
      () => run(process.execPath, [CLI, '-c', cfg, 'backup']),
    );
    return { entries: dirs * 100 + 1, first, again, find };
  } finally {
    grid.stop();
  }
}

function report(r, ratios) {
  const n = fmt(r.entries, 0);
  return {
    title: `The unchanged night: ${n} entries against find -printf '${FIND_FORMAT.trim()}'`,
    header: ['run', 'entries/s', 'seconds', 'peak RSS MiB'],
    rows: [
      r.first ? [`first backup of the ${n}-entry tree (embedded grid, own process)`, fmt(r.entries / r.first.seconds, 0), fmt(r.first.seconds, 2), fmt(r.first.peakMiB, 0)] : ['first backup: kept from an earlier run (LAFS_BENCH_KEEP_CACHE)', '', '', ''],
      ['the same tree again, unchanged (median)', fmt(r.entries / r.again.seconds, 0), fmt(r.again.seconds, 2), fmt(r.again.peakMiB, 0)],
      ['floor: find -printf over the same tree (median, in turns)', fmt(r.entries / r.find.seconds, 0), fmt(r.find.seconds, 2), fmt(r.find.peakMiB, 0)],
    ],
    ratios,
  };
}

export async function bench() {
  const r = await unchanged(1000, Number(process.env.LAFS_BENCH_RUNS ?? 5));
  return report(r, [
    ['unchanged rerun time vs find -printf', r.again.seconds / r.find.seconds, 'target ≤ 3'],
    ['unchanged rerun peak RSS MiB', r.again.peakMiB, ''],
  ]);
}
