// Phase 2 benchmarks, each beside a baseline measured in the same run against the same grid
// (the embedded grid in its own process, on loopback).
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync, utimesSync } from 'node:fs';
import { parse } from 'yaml';
import { join } from 'node:path';
import { request } from 'undici';
import { BENCH_DIR, CLI, fmt, fresh, startGridProcess, generateTree, interleaved, medianRun, run } from './lib.js';

export const name = 'upload';

/** operation.concurrency as shipped (config/default.yaml). */
function defaultConcurrency() {
  return parse(readFileSync(new URL('../config/default.yaml', import.meta.url), 'utf8')).operation.concurrency;
}


function config(dir, source, url, { xz = true } = {}) {
  const cfg = join(dir, 'bench.yaml');
  writeFileSync(cfg, `source: {path: ${source}, queue: {path: ${join(dir, 'queue.txt')}}, entry_cache: {path: ${join(dir, 'cache.db')}}}\ndestination: {url: '${url}', encoding: {xz: {enabled: ${xz}}}}\n`);
  return cfg;
}

async function bigFile(url) {
  const dir = join(BENCH_DIR, 'big');
  const src = join(dir, 'src');
  const file = join(src, 'big.bin');
  if (!existsSync(file)) {
    mkdirSync(src, { recursive: true });
    const chunk = randomBytes(1 << 20);
    const parts = [];
    for (let i = 0; i < 256; i++) parts.push(Buffer.concat([chunk.subarray(i), chunk.subarray(0, i)]));
    writeFileSync(file, Buffer.concat(parts));
    const old = new Date(Date.now() - 86400_000);
    utimesSync(file, old, old);
  }
  const cfg = config(dir, src, url, { xz: false });
  // Warm the grid (convergence: later uploads of the same bytes cost it the same) and the page cache.
  await run('curl', ['-sS', '-o', '/dev/null', '-T', file, url]);
  const curl = await medianRun(3, () => run('curl', ['-sS', '-o', '/dev/null', '-T', file, url]));
  const putOne = await medianRun(3, () => run(process.execPath, [new URL('./put-one.js', import.meta.url).pathname, url, file]));
  const ours = await medianRun(3, () => {
    fresh(dir);
    return run(process.execPath, [CLI, '-c', cfg, 'backup']);
  });
  // Steady state, without process start-up on either side: our upload path vs a raw PUT, both
  // warm in this process.
  const { loadConfig } = await import('../dist/config/load.js');
  const { backupInSession } = await import('../dist/commands/backup.js');
  const oursWarm = await medianRun(3, async () => {
    fresh(dir);
    const config = loadConfig({ files: [cfg] });
    config.destination.result.print_to_stdout = false;
    const t = process.hrtime.bigint();
    await backupInSession(config, { forceQueue: false, dryRun: false, progress: false });
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    return { seconds };
  });
  const rawWarm = await medianRun(3, async () => {
    const t = process.hrtime.bigint();
    const res = await request(url, { method: 'PUT', body: createReadStream(file) });
    await res.body.text();
    return { seconds: Number(process.hrtime.bigint() - t) / 1e9 };
  });
  const mib = 256;
  const baseline = Math.min(curl.seconds, putOne.seconds);
  return {
    rows: [
      ['(a) lafs-backup backup, one 256 MiB file, xz off', fmt(mib / ours.seconds, 0), fmt(ours.seconds, 2), fmt(ours.peakMiB, 0)],
      ['    baseline: curl -T (same file, same grid)', fmt(mib / curl.seconds, 0), fmt(curl.seconds, 2), fmt(curl.peakMiB, 0)],
      ['    baseline: a bare undici program PUTting the file', fmt(mib / putOne.seconds, 0), fmt(putOne.seconds, 2), fmt(putOne.peakMiB, 0)],
      ['    steady state: our upload path, warm, in process', fmt(mib / oursWarm.seconds, 0), fmt(oursWarm.seconds, 2), ''],
      ['    steady state: a raw undici PUT, warm, in process', fmt(mib / rawWarm.seconds, 0), fmt(rawWarm.seconds, 2), ''],
    ],
    ratios: [
      ['(a) throughput vs the faster baseline program', baseline / ours.seconds, 'target ≥ 0.9'],
      ['(a) steady state vs a warm raw PUT (no start-up on either side)', rawWarm.seconds / oursWarm.seconds, ''],
    ],
  };
}

/** `dirs` directories of `count` random files, sizes from `size(i)`, under BENCH_DIR/name/src. */
function smallTree(name, dirs, count, size) {
  const src = generateTree(`${name}/src`, dirs, count, (d, f) => randomBytes(size(d * count + f)));
  return { dir: join(BENCH_DIR, name), src, files: dirs * count };
}

const PUT_LOOP = new URL('./put-loop.js', import.meta.url).pathname;

/**
 * (b) Many small files, first backup, against N parallel bare PUTs of the same files (N our
 * default concurrency), taken in turns in the same run:
 *  - against the embedded grid as it is: it answers a PUT in a fraction of a millisecond of CPU
 *    on the same two cores, so this shows what our client spends per file, not the gateway;
 *  - against the grid answering each request after `LAFS_BENCH_GATEWAY_MS` (default 200 ms: a
 *    real Tahoe-LAFS 1.20 gateway, 2-of-4 on a 2-core machine, took 15.3 s for 8 parallel
 *    `curl -T` of 600 files of 1-30 KB, ~200 ms each), the same shape of tree: the gateway's
 *    ceiling, as the target means it.
 */
async function smallFiles(url) {
  const n = defaultConcurrency();
  const tiny = smallTree('small', 20, 100, () => 2048);
  const cfg = config(tiny.dir, tiny.src, url);
  // The baseline is a bare loop program in its own process, as ours runs in its own.
  const loop = await medianRun(3, () => run(process.execPath, [PUT_LOOP, url, tiny.src]));
  const [parallel, ours] = await interleaved(
    3,
    () => run(process.execPath, [PUT_LOOP, url, tiny.src, String(n)]),
    () => {
      fresh(tiny.dir);
      return run(process.execPath, [CLI, '-c', cfg, 'backup']);
    },
  );
  const paceMs = Number(process.env.LAFS_BENCH_GATEWAY_MS ?? 200);
  const real = smallTree('small-paced', 6, 100, (i) => 1000 + ((i * 7919) % 29_001));
  const slow = await startGridProcess({ delayMs: paceMs });
  let paced;
  try {
    const cfgPaced = config(real.dir, real.src, slow.url);
    paced = await interleaved(
      3,
      () => run(process.execPath, [PUT_LOOP, slow.url, real.src, String(n)]),
      () => {
        fresh(real.dir);
        return run(process.execPath, [CLI, '-c', cfgPaced, 'backup']);
      },
    );
  } finally {
    slow.stop();
  }
  const [pacedBare, pacedOurs] = paced;
  const rate = (files, r) => fmt(files / r.seconds, 0);
  return {
    rows: [
      ['(b) lafs-backup backup, 2,000 files of 2 KiB (+20 dirs)', rate(tiny.files, ours), fmt(ours.seconds, 2), fmt(ours.peakMiB, 0)],
      ['    baseline: a bare program PUTting the same files one by one', rate(tiny.files, loop), fmt(loop.seconds, 2), fmt(loop.peakMiB, 0)],
      [`    baseline: the same, ${n} PUTs at a time (our default concurrency)`, rate(tiny.files, parallel), fmt(parallel.seconds, 2), fmt(parallel.peakMiB, 0)],
      [`(b) the same shape as a real gateway's case: 600 files of 1-30 KB (+6 dirs), gateway ${paceMs} ms per request`, rate(real.files, pacedOurs), fmt(pacedOurs.seconds, 2), fmt(pacedOurs.peakMiB, 0)],
      [`    baseline: ${n} bare PUTs at a time, same files, same gateway`, rate(real.files, pacedBare), fmt(pacedBare.seconds, 2), fmt(pacedBare.peakMiB, 0)],
    ],
    ratios: [
      ['(b) speed vs the bare sequential loop', loop.seconds / ours.seconds, 'target > 1'],
      [`(b) time vs ${n} parallel bare PUTs, gateway costing nothing (our CPU per file shows)`, ours.seconds / parallel.seconds, ''],
      [`(b) time vs ${n} parallel bare PUTs, gateway at ${paceMs} ms (the gateway's ceiling)`, pacedOurs.seconds / pacedBare.seconds, 'target ≤ 1.05'],
    ],
    unit: 'files/s',
  };
}

/**
 * (c) An unchanged tree backed up again: `dirs` × 99 files (+ the directories). The floor is
 * `find` printing the same facts a queue line holds, over the same tree in the same run.
 */
async function unchangedTree(url, dirs) {
  const tree = generateTree(dirs === 1000 ? 'tree-100k' : `tree-${dirs}x99`, dirs, 99);
  const dir = join(BENCH_DIR, dirs === 1000 ? 'unchanged' : `unchanged-${dirs}`);
  mkdirSync(dir, { recursive: true });
  const cfg = config(dir, tree, url);
  fresh(dir);
  const first = await run(process.execPath, [CLI, '-c', cfg, 'backup']);
  const again = await medianRun(3, () => run(process.execPath, [CLI, '-c', cfg, 'backup']));
  const reuse = await medianRun(3, () => run(process.execPath, [CLI, '-c', cfg, 'backup', '--reuse-queue']));
  const find = await medianRun(3, () => run('find', [tree, '-printf', '%p %U:%G:%m %s %T@ %C@ %i\n'], { stdout: 'ignore' }));
  const entries = dirs * 100 + 1;
  const n = fmt(entries, 0);
  return {
    rows: [
      [`(c) first backup of the ${n}-entry tree (for reference)`, fmt(entries / first.seconds, 0), fmt(first.seconds, 2), fmt(first.peakMiB, 0)],
      ['(c) the same tree again, unchanged (queue rebuilt)', fmt(entries / again.seconds, 0), fmt(again.seconds, 2), fmt(again.peakMiB, 0)],
      ['    the same, with --reuse-queue (phase 2 only)', fmt(entries / reuse.seconds, 0), fmt(reuse.seconds, 2), fmt(reuse.peakMiB, 0)],
      ['    floor: find -printf of the same facts', fmt(entries / find.seconds, 0), fmt(find.seconds, 2), fmt(find.peakMiB, 0)],
    ],
    ratios: [
      [`(c) entries/s, unchanged ${n}-entry tree`, entries / again.seconds, 'target ≥ 50,000'],
      ['(c) time vs the find floor', again.seconds / find.seconds, 'target ≤ 10'],
      ['(c) peak RSS MiB', again.peakMiB, 'target < 200'],
    ],
    unit: 'entries/s',
  };
}

export async function bench() {
  const only = process.env.LAFS_BENCH_ONLY ?? 'abc';
  const grid = await startGridProcess();
  const none = { rows: [], ratios: [] };
  try {
    const a = only.includes('a') ? await bigFile(grid.url) : none;
    const b = only.includes('b') ? await smallFiles(grid.url) : none;
    // LAFS_BENCH_UNCHANGED_DIRS=10000: the 1,000,001-entry tree (its first backup takes minutes).
    const c = only.includes('c') ? await unchangedTree(grid.url, Number(process.env.LAFS_BENCH_UNCHANGED_DIRS ?? 1000)) : none;
    return {
      title: 'Phase 2: uploads against the embedded grid (own process, loopback)',
      header: ['run', 'rate (MiB/s | files/s | entries/s)', 'seconds', 'peak RSS MiB'],
      rows: [...a.rows, ...b.rows, ...c.rows],
      ratios: [...a.ratios, ...b.ratios, ...c.ratios],
    };
  } finally {
    grid.stop();
  }
}
