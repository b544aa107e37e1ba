// Phase 1: build the queue of a generated 100,000-entry tree; baseline: find over the same tree.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI, fmt, generateTree, medianRun, run } from './lib.js';

export const name = 'queue';

export async function bench() {
  const tree = generateTree('tree-100k', 1000, 99); // 1000 dirs + 99,000 files + root = 100,001 entries
  const cfg = join(BENCH_DIR, 'queue.yaml');
  writeFileSync(cfg, `source: {path: ${tree}, queue: {path: ${join(BENCH_DIR, 'queue.txt')}}}\n`);
  await run('find', [tree], { stdout: 'ignore' }); // warm the dentry cache for everyone
  const ours = await medianRun(3, () => run(process.execPath, [CLI, '-c', cfg, 'backup', '--queue-only']));
  // The walk alone, in this process: no CLI start-up (node, yargs, yaml, pino ≈ 0.15 s).
  const { buildQueue } = await import('../dist/scan/phase1.js');
  const inproc = await medianRun(3, async () => {
    const t = process.hrtime.bigint();
    await buildQueue({ source: tree, queuePath: join(BENCH_DIR, 'queue-inproc.txt'), filter: [] });
    return { seconds: Number(process.hrtime.bigint() - t) / 1e9 };
  });
  const entries = 100_001;
  const find = await medianRun(3, () => run('find', [tree], { stdout: 'ignore' }));
  const findStat = await medianRun(3, () => run('find', [tree, '-printf', '%P %U:%G:%m\n'], { stdout: 'ignore' }));
  const rate = entries / ours.seconds;
  const rows = [
    ['lafs-backup backup --queue-only', fmt(rate), fmt(ours.seconds, 2), fmt(ours.peakMiB, 1)],
    ['  the walk alone, in process (no start-up)', fmt(entries / inproc.seconds), fmt(inproc.seconds, 2), ''],
    ['find TREE (names only)', fmt(entries / find.seconds), fmt(find.seconds, 2), fmt(find.peakMiB, 1)],
    ["find TREE -printf '%P %U:%G:%m' (stats)", fmt(entries / findStat.seconds), fmt(findStat.seconds, 2), fmt(findStat.peakMiB, 1)],
  ];
  return {
    title: 'Phase 1: queue of a 100,001-entry tree',
    header: ['run', 'entries/s', 'seconds', 'peak RSS MiB'],
    rows,
    ratios: [
      [`rate vs find (names only)`, rate / (entries / find.seconds), 'target ≥ 0.25'],
      [`rate vs find -printf (stats)`, rate / (entries / findStat.seconds), ''],
      [`walk alone vs find (names only)`, entries / inproc.seconds / (entries / find.seconds), ''],
      [`walk alone vs find -printf (stats)`, entries / inproc.seconds / (entries / findStat.seconds), ''],
      [`peak RSS MiB`, ours.peakMiB, 'target < 150'],
    ],
  };
}
