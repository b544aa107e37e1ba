// `dump` of a 1 GiB directory: wall time, throughput and peak RSS of `lafs-backup dump` (tar and
// zip, to /dev/null), against curl downloading the same large file in the same run. The backup
// is made directly on the embedded grid: 12 files of 64 MiB (one random blob, linked 12 times),
// 2 compressible files of 64 MiB stored xz with their size on the edge, one of 32 MiB stored xz
// without it (dump decodes it aside first), and 20,000 files of 4 KiB in 100 directories.
// The target: under 150 MB peak RSS, whatever the size of the tree (issue 26): the ratio lines say
// PASS or FAIL, peak RSS (polled VmHWM) over 150 MB (10^6 bytes; 143.05 MiB).
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI, fmt, run } from './lib.js';

const MiB = 1024 * 1024;
const TARGET_MB = 150;

/** A peak in MiB against the target: its ratio, and PASS or FAIL with the figures in MB. */
function againstTarget(label, peakMiB) {
  const mb = (peakMiB * MiB) / 1e6;
  const ratio = mb / TARGET_MB;
  return [`${label} peak RSS / ${TARGET_MB} MB target`, ratio, `${ratio < 1 ? 'PASS' : 'FAIL'}: ${fmt(mb)} MB of ${TARGET_MB} MB`];
}

async function xz(data) {
  const { createXz, xzSettings } = await import('../dist/core/xz.js');
  const enc = createXz(xzSettings({ preset: 1 }));
  const parts = [];
  enc.on('data', (c) => parts.push(c));
  const done = new Promise((ok) => enc.on('end', ok));
  enc.end(data);
  await done;
  return Buffer.concat(parts);
}

async function makeBackup(url) {
  const { TahoeClient } = await import('../dist/tahoe/client.js');
  const c = new TahoeClient({ url, connections: 8 });
  const meta = { uid: '1000', gid: '1000', mode: '100644', mtime: '1700000000.123456789' };
  const big = await c.putFile(() => randomBytes(64 * MiB));
  const text = Buffer.from('a line of a log that compresses well, number 000000\n'.repeat((64 * MiB) / 52 + 1)).subarray(0, 64 * MiB);
  const textXz = await c.putFile(async () => xz(text));
  const halfXz = await c.putFile(async () => xz(text.subarray(0, 32 * MiB)));
  const small = [];
  for (let i = 0; i < 1000; i++) small.push(await c.putFile(() => Buffer.from(`small file ${i} `.padEnd(4096, '.'))));
  const dirs = [];
  for (let d = 0; d < 100; d += 10) {
    dirs.push(
      ...(await Promise.all(
        Array.from({ length: 10 }, (_, k) => c.mkdirImmutable(Array.from({ length: 200 }, (_, f) => ({ name: `f${f}.txt`, type: 'filenode', cap: small[((d + k) * 200 + f) % 1000], metadata: meta })))),
      )),
    );
  }
  const children = [
    ...Array.from({ length: 12 }, (_, i) => ({ name: `big${i}.bin`, type: 'filenode', cap: big, metadata: meta })),
    { name: 'log-a.txt', type: 'filenode', cap: textXz, metadata: { ...meta, enc: 'xz', size: String(64 * MiB) } },
    { name: 'log-b.txt', type: 'filenode', cap: textXz, metadata: { ...meta, enc: 'xz', size: String(64 * MiB) } },
    { name: 'old.txt', type: 'filenode', cap: halfXz, metadata: { ...meta, enc: 'xz' } },
    ...dirs.map((cap, d) => ({ name: `d${d}`, type: 'dirnode', cap, metadata: { ...meta, mode: '40755' } })),
  ];
  const root = await c.mkdirImmutable(children);
  await c.close();
  return { root, big, bytes: 12 * 64 * MiB + 2 * 64 * MiB + 32 * MiB + 20_000 * 4096 };
}

export async function bench() {
  const { startGrid } = await import('../dist/grid/server.js');
  const grid = await startGrid();
  const dir = join(BENCH_DIR, 'dump');
  mkdirSync(dir, { recursive: true });
  try {
    const { root, big, bytes } = await makeBackup(grid.url);
    const cfg = join(dir, 'dump.yaml');
    writeFileSync(cfg, `destination: {url: '${grid.url}'}\n`);
    const tar = await run(process.execPath, [CLI, '-c', cfg, 'dump', root], { stdout: 'ignore' });
    const zip = await run(process.execPath, [CLI, '-c', cfg, 'dump', root, '--archive', 'zip'], { stdout: 'ignore' });
    const out = join(dir, 'curl.out');
    const curl = await run('curl', ['-sS', '-o', out, `${grid.url}/${big}`]);
    rmSync(out, { force: true });
    const rate = (b, s) => b / MiB / s;
    return {
      title: `dump of a ${fmt(bytes / MiB)} MiB directory (${fmt(20_015)} files) to /dev/null`,
      header: ['', 'seconds', 'MiB/s', 'peak RSS MiB'],
      rows: [
        ['dump (tar)', fmt(tar.seconds, 2), fmt(rate(bytes, tar.seconds)), fmt(tar.peakMiB)],
        ['dump --archive zip', fmt(zip.seconds, 2), fmt(rate(bytes, zip.seconds)), fmt(zip.peakMiB)],
        ['curl, one 64 MiB file', fmt(curl.seconds, 2), fmt(rate(64 * MiB, curl.seconds)), fmt(curl.peakMiB)],
      ],
      ratios: [
        ['tar throughput / curl', rate(bytes, tar.seconds) / rate(64 * MiB, curl.seconds)],
        againstTarget('tar', tar.peakMiB),
        againstTarget('zip', zip.peakMiB),
      ],
    };
  } finally {
    await grid.stop();
  }
}
