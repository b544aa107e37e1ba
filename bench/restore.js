// Restore of a large backup: entries/s and peak RSS of `lafs-backup restore`, against parallel
// curl GETs of the same files (as many at once as the restore's concurrency) in the same run.
// The backup is made directly on the embedded grid: DIRS directories of 100 files (1,000
// distinct contents, so building it is quick; every file is still downloaded and written).
// LAFS_BENCH_RESTORE_DIRS=10000 gives the 1,000,000-entry case (default 1,000: 100,101 entries).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI, fmt, run } from './lib.js';

const FILES = 100;

async function makeBackup(url, dirs, prefix = 'f') {
  const { TahoeClient } = await import('../dist/tahoe/client.js');
  const c = new TahoeClient({ url, connections: 8 });
  const meta = { uid: '0', gid: '0', mode: '100644', mtime: '1700000000.000000000' };
  const contents = [];
  for (let i = 0; i < 1000; i++) contents.push(await c.putFile(() => Buffer.from(`file ${i} `.padEnd(200, '.'))));
  const dirCaps = [];
  const batch = 8;
  for (let d = 0; d < dirs; d += batch) {
    const made = await Promise.all(
      Array.from({ length: Math.min(batch, dirs - d) }, (_, k) =>
        c.mkdirImmutable(Array.from({ length: FILES }, (_, f) => ({ name: `${prefix}${f}`, type: 'filenode', cap: contents[((d + k) * FILES + f) % 1000], metadata: meta }))),
      ),
    );
    dirCaps.push(...made);
  }
  const root = await c.mkdirImmutable(dirCaps.map((cap, d) => ({ name: `d${d}`, type: 'dirnode', cap, metadata: { ...meta, mode: '40755' } })));
  await c.close();
  return { root, sample: contents };
}

export async function bench() {
  const { startGrid } = await import('../dist/grid/server.js');
  const grid = await startGrid();
  const dirs = Number(process.env.LAFS_BENCH_RESTORE_DIRS ?? 1000);
  const entries = dirs * FILES + dirs;
  const dir = join(BENCH_DIR, 'restore');
  mkdirSync(dir, { recursive: true });
  const concurrency = 4;
  try {
    const { root, sample } = await makeBackup(grid.url, dirs);
    // The same tree with every file renamed: diff then reports every file twice (- and +).
    const { root: renamed } = await makeBackup(grid.url, dirs, 'g');
    const cfg = join(dir, 'restore.yaml');
    writeFileSync(cfg, `destination: {url: '${grid.url}'}\noperation: {concurrency: ${concurrency}}\n`);
    const dest = join(dir, 'dest');
    rmSync(dest, { recursive: true, force: true });
    const ours = await run(process.execPath, [CLI, '-c', cfg, 'restore', root, dest]);
    rmSync(dest, { recursive: true, force: true });
    const ls = await run(process.execPath, [CLI, '-c', cfg, 'ls', '-R', root], { stdout: 'ignore' });
    const diff = await run(process.execPath, [CLI, '-c', cfg, 'diff', '--json', root, renamed], { stdout: 'ignore' });
    // Baseline: curl fetching files of the same kind, `concurrency` at a time, into files.
    const n = Math.min(20_000, dirs * FILES);
    const out = join(dir, 'curl');
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    const list = Array.from({ length: n }, (_, i) => `url = "${grid.url}/${sample[i % sample.length]}"\noutput = "${join(out, `f${i}`)}"`).join('\n');
    writeFileSync(join(dir, 'curl.cfg'), `${list}\n`);
    const curl = await run('curl', ['-sS', '--parallel', '--parallel-max', String(concurrency), '-K', join(dir, 'curl.cfg')]);
    rmSync(out, { recursive: true, force: true });
    const oursRate = dirs * FILES / ours.seconds;
    const curlRate = n / curl.seconds;
    return {
      title: `Restore of ${fmt(entries)} entries (${fmt(dirs)} directories of ${FILES} files) from the embedded grid`,
      header: ['run', 'files/s', 'seconds', 'peak RSS MiB'],
      rows: [
        ['lafs-backup restore (concurrency 4)', fmt(oursRate, 0), fmt(ours.seconds, 1), fmt(ours.peakMiB, 0)],
        [`baseline: curl --parallel-max 4, ${fmt(n)} of the same files`, fmt(curlRate, 0), fmt(curl.seconds, 1), fmt(curl.peakMiB, 0)],
        [`ls -R (${fmt(entries)} lines)`, fmt(entries / ls.seconds, 0), fmt(ls.seconds, 1), fmt(ls.peakMiB, 0)],
        [`diff --json against the tree renamed (${fmt(2 * dirs * FILES)} differences)`, fmt((2 * dirs * FILES) / diff.seconds, 0), fmt(diff.seconds, 1), fmt(diff.peakMiB, 0)],
      ],
      ratios: [
        ['restore speed vs parallel curl', oursRate / curlRate, 'the gateway is the ceiling'],
        ['restore peak RSS MiB', ours.peakMiB, 'target < 200 at 1,000,000 entries'],
        ['ls -R / diff peak RSS MiB', Math.max(ls.peakMiB, diff.peakMiB), 'bounded: the same at 100,000 and 1,000,000 entries'],
      ],
    };
  } finally {
    await grid.stop();
  }
}
