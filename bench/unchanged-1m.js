// `npm run bench -- unchanged-1m`: the 1,000,001-entry tree (10,000 directories × 99 files):
// peak RSS of the first backup and of the unchanged rerun (target < 150 MB each), and the
// rerun against find -printf. Its first backup takes many minutes: not in the default set.
import { fmt } from './lib.js';
import { unchanged } from './unchanged.js';

export const name = 'unchanged-1m';

export async function bench() {
  const r = await unchanged(10_000, Number(process.env.LAFS_BENCH_RUNS ?? 3));
  const mb = (mib) => (mib * 1024 * 1024) / 1e6;
  const n = fmt(r.entries, 0);
  return {
    title: `The unchanged night at ${n} entries: peak RSS`,
    header: ['run', 'entries/s', 'seconds', 'peak RSS MiB'],
    rows: [
      [`first backup of the ${n}-entry tree (embedded grid, own process)`, fmt(r.entries / r.first.seconds, 0), fmt(r.first.seconds, 2), fmt(r.first.peakMiB, 0)],
      ['the same tree again, unchanged (median)', fmt(r.entries / r.again.seconds, 0), fmt(r.again.seconds, 2), fmt(r.again.peakMiB, 0)],
      ['floor: find -printf over the same tree (median, in turns)', fmt(r.entries / r.find.seconds, 0), fmt(r.find.seconds, 2), fmt(r.find.peakMiB, 0)],
    ],
    ratios: [
      ['first backup peak RSS, MB', mb(r.first.peakMiB), 'target < 150'],
      ['unchanged rerun peak RSS, MB', mb(r.again.peakMiB), 'target < 150'],
      ['unchanged rerun time vs find -printf', r.again.seconds / r.find.seconds, ''],
    ],
  };
}
