// The least work possible (issue 15), each case beside its baseline measured in the same run
// against the same embedded grid (its own process, loopback):
//  (d) a 64 MiB incompressible file with default settings vs a bare PUT of it;
//  (e) a mixed tree (logs, JSON, random "media" with media names and without): default settings
//      vs xz on everything (min_saving: null, compressed_names: []) vs xz off — bytes and time;
//  (f) rename + copy + hard link of stored contents: file bodies the grid received (0 wanted);
//      a first backup of new large files with and without the pre-hash (hash_before_upload).
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, linkSync, mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, CLI, fmt, fresh, startGridProcess, interleaved, medianRun, run } from './lib.js';


const old = new Date(Date.now() - 86400_000);
function put(path, data) {
  writeFileSync(path, data);
  utimesSync(path, old, old);
}

function config(dir, source, url, xz = '') {
  const cfg = join(dir, `bench${xz ? '-' + Buffer.from(xz).toString('hex').slice(0, 12) : ''}.yaml`);
  writeFileSync(
    cfg,
    `source: {path: ${source}, queue: {path: ${join(dir, 'queue.txt')}}, entry_cache: {path: ${join(dir, 'cache.db')}}}\n` +
      `destination: {url: '${url}'${xz ? `, encoding: {xz: {${xz}}}` : ''}}\n`,
  );
  return cfg;
}

async function backupJson(cfg, extra = []) {
  const r = await run(process.execPath, [CLI, '-c', cfg, 'backup', '--json', ...extra]);
  return { ...r, json: JSON.parse(r.out) };
}

async function incompressible(grid) {
  const dir = join(BENCH_DIR, 'incompressible');
  const src = join(dir, 'src');
  const file = join(src, 'video-without-a-media-name.bin');
  if (!existsSync(file)) {
    mkdirSync(src, { recursive: true });
    put(file, randomBytes(64 << 20));
  }
  const cfg = config(dir, src, grid.url);
  await run('curl', ['-sS', '-o', '/dev/null', '-T', file, grid.url]);
  const curl = await medianRun(3, () => run('curl', ['-sS', '-o', '/dev/null', '-T', file, grid.url]));
  // Ours and the bare PUT taken in turns: drift on a shared machine hits both alike.
  const [putOne, ours] = await interleaved(
    5,
    () => run(process.execPath, [new URL('./put-one.js', import.meta.url).pathname, grid.url, file]),
    () => {
      fresh(dir);
      return run(process.execPath, [CLI, '-c', cfg, 'backup']);
    },
  );
  const baseline = Math.min(curl.seconds, putOne.seconds);
  return {
    rows: [
      ['(d) backup, 64 MiB of random bytes, default settings', fmt(64 / ours.seconds, 0), fmt(ours.seconds, 2), fmt(ours.peakMiB, 0), ''],
      ['    baseline: curl -T of the file', fmt(64 / curl.seconds, 0), fmt(curl.seconds, 2), fmt(curl.peakMiB, 0), ''],
      ['    baseline: a bare undici PUT of the file', fmt(64 / putOne.seconds, 0), fmt(putOne.seconds, 2), fmt(putOne.peakMiB, 0), ''],
    ],
    ratios: [
      ['(d) time vs a bare undici PUT (the same HTTP client, in Node)', ours.seconds / putOne.seconds, 'target ≤ 1.1'],
      ['(d) time vs the faster bare PUT (curl, in C)', ours.seconds / baseline, ''],
    ],
  };
}

function mixedTree() {
  const root = join(BENCH_DIR, 'mixed', 'src');
  if (existsSync(`${root}.done`)) return root;
  for (let d = 0; d < 8; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 8; f++) {
      const lines = Array.from({ length: 12_000 }, (_, i) => `2026-11-23T05:${String(i % 60).padStart(2, '0')}:00Z host${d} app[${f}] GET /api/v1/items/${(i * 7919) % 100_000} 200 ${i % 311} ms\n`);
      put(join(dir, `app-${f}.log`), Buffer.from(lines.join('')));
      put(join(dir, `items-${f}.json`), Buffer.from(JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ id: i + f * 3000, name: `item ${i}`, tags: ['a', 'b', String(i % 13)], price: (i * 37) % 1000 })))));
      put(join(dir, `photo-${f}.jpg`), randomBytes(1 << 20));
      put(join(dir, `blob-${f}.bin`), randomBytes(1 << 20));
    }
  }
  writeFileSync(`${root}.done`, '');
  return root;
}

async function mixed(grid) {
  const src = mixedTree();
  const dir = join(BENCH_DIR, 'mixed');
  const cases = [
    ['default settings', ''],
    ['xz on everything (min_saving: null, compressed_names: [])', 'min_saving: null, compressed_names: []'],
    ['xz off', 'enabled: false'],
  ];
  const results = [];
  for (const [label, xz] of cases) {
    const cfg = config(dir, src, grid.url, xz);
    const r = await medianRun(3, async () => {
      fresh(dir);
      return backupJson(cfg);
    });
    results.push({ label, ...r });
  }
  const rows = results.map((r) => [
    `(e) mixed tree, ${r.label}`,
    fmt(r.json.bytes.sent / 2 ** 20, 1),
    fmt(r.seconds, 2),
    fmt(r.peakMiB, 0),
    `${r.json.stored.xz} xz / ${r.json.stored.raw_by_name} raw by name / ${r.json.stored.raw_by_content} raw by contents`,
  ]);
  const [def, all, none] = results;
  // The random files alone (half with media names, half without), default vs xz off.
  const mediaDir = join(BENCH_DIR, 'mixed-media');
  const mediaSrc = join(mediaDir, 'src');
  if (!existsSync(`${mediaSrc}.done`)) {
    mkdirSync(mediaSrc, { recursive: true });
    for (let f = 0; f < 32; f++) {
      put(join(mediaSrc, `photo-${f}.jpg`), randomBytes(1 << 20));
      put(join(mediaSrc, `blob-${f}.bin`), randomBytes(1 << 20));
    }
    writeFileSync(`${mediaSrc}.done`, '');
  }
  const media = {};
  for (const [k, xz] of [['def', ''], ['none', 'enabled: false']]) {
    const cfg = config(mediaDir, mediaSrc, grid.url, xz);
    media[k] = await medianRun(5, () => {
      fresh(mediaDir);
      return run(process.execPath, [CLI, '-c', cfg, 'backup']);
    });
  }
  rows.push(['(e) random files only (32 .jpg + 32 .bin, 1 MiB each), default settings', '64.0', fmt(media.def.seconds, 2), fmt(media.def.peakMiB, 0), '']);
  rows.push(['    the same, xz off', '64.0', fmt(media.none.seconds, 2), fmt(media.none.peakMiB, 0), '']);
  // Text: what the text files became, default vs xz-everything (the same when text is still compressed).
  return {
    rows,
    ratios: [
      ['(e) bytes sent, default vs xz on everything', def.json.bytes.sent / all.json.bytes.sent, '≈ 1: text compressed as well as before'],
      ['(e) time, default vs xz off (the difference is compressing the text)', def.seconds / none.seconds, ''],
      ['(e) time, random files only (media names and not), default vs xz off', media.def.seconds / media.none.seconds, 'target ≤ 1.1'],
      ['(e) time, xz on everything vs default', all.seconds / def.seconds, 'what sampling saves'],
      ['(e) peak RSS MiB, default settings', def.peakMiB, 'target < 250'],
    ],
  };
}

async function dedup(grid) {
  const dir = join(BENCH_DIR, 'dedup');
  rmSync(dir, { recursive: true, force: true });
  const src = join(dir, 'src');
  mkdirSync(join(src, 'album'), { recursive: true });
  for (let i = 0; i < 8; i++) put(join(src, 'album', `p${i}.bin`), randomBytes(1 << 20));
  put(join(src, 'report.txt'), Buffer.from('quarterly numbers\n'.repeat(20_000)));
  const cfg = config(dir, src, grid.url);
  await backupJson(cfg);
  renameSync(join(src, 'album'), join(src, 'album-2026'));
  cpSync(join(src, 'report.txt'), join(src, 'report-copy.txt'), { preserveTimestamps: true });
  linkSync(join(src, 'album-2026', 'p0.bin'), join(src, 'p0-link.bin'));
  const before = await grid.stats();
  const second = await backupJson(cfg);
  const after = await grid.stats();
  const bodies = after.put_uri - before.put_uri;

  // New large files. A first backup skips the pre-hash (nothing stored has their size); when
  // the cache knows contents of the same sizes, each is read once more to be looked up. Timed:
  // the new files against a cache that knows 8 other files of their size, pre-hash on and off,
  // and the plain first backup (pre-hash on, empty cache).
  const big = join(dir, 'big');
  const seed = join(dir, 'seed');
  mkdirSync(big, { recursive: true });
  mkdirSync(seed, { recursive: true });
  for (let i = 0; i < 8; i++) {
    put(join(big, `f${i}.bin`), randomBytes(8 << 20));
    put(join(seed, `s${i}.bin`), randomBytes(8 << 20));
  }
  const seedCfg = join(dir, 'seed.yaml');
  writeFileSync(seedCfg, `source: {path: ${seed}, queue: {path: ${join(dir, 'sq.txt')}}, entry_cache: {path: ${join(dir, 'seed.db')}}}\ndestination: {url: '${grid.url}'}\n`);
  await run(process.execPath, [CLI, '-c', seedCfg, 'backup']);
  const timed = (hash, knowing) => () => {
    const cfgH = join(dir, `big-${hash}.yaml`);
    writeFileSync(cfgH, `source: {path: ${big}, queue: {path: ${join(dir, 'bq.txt')}}, entry_cache: {path: ${join(dir, 'bc.db')}}}\ndestination: {url: '${grid.url}'}\noperation: {hash_before_upload: ${hash}}\n`);
    for (const f of ['bc.db', 'bc.db-wal', 'bc.db-shm', 'bq.txt']) rmSync(join(dir, f), { force: true });
    if (knowing) for (const x of ['', '-wal']) if (existsSync(join(dir, `seed.db${x}`))) cpSync(join(dir, `seed.db${x}`), join(dir, `bc.db${x}`));
    return run(process.execPath, [CLI, '-c', cfgH, 'backup']);
  };
  const [without, firstEver] = await interleaved(7, timed(false, false), timed(true, false));
  const [withoutKnown, withHash] = await interleaved(7, timed(false, true), timed(true, true));
  return {
    rows: [
      ['(f) rename a directory of 8 × 1 MiB, copy a file, hard-link one, back up', `${bodies} bodies`, fmt(second.seconds, 2), fmt(second.peakMiB, 0), `${second.json.files.deduplicated} found by contents, ${second.json.bytes.sent} bytes sent`],
      ['(f) a first backup of 8 new files × 8 MiB, pre-hash on (skipped: nothing stored has their size)', fmt(64 / firstEver.seconds, 0), fmt(firstEver.seconds, 2), fmt(firstEver.peakMiB, 0), ''],
      ['    the same without it (hash_before_upload: false)', fmt(64 / without.seconds, 0), fmt(without.seconds, 2), fmt(without.peakMiB, 0), ''],
      ['(f) the same new files, the cache knowing other contents of their size: pre-hash on (it runs)', fmt(64 / withHash.seconds, 0), fmt(withHash.seconds, 2), fmt(withHash.peakMiB, 0), ''],
      ['    the same without it', fmt(64 / withoutKnown.seconds, 0), fmt(withoutKnown.seconds, 2), fmt(withoutKnown.peakMiB, 0), ''],
    ],
    ratios: [
      ['(f) file bodies uploaded for rename + copy + hard link', bodies, 'target 0'],
      ['(f) first backup of new large files, with vs without the pre-hash', firstEver.seconds / without.seconds, 'target ≤ 1.05'],
      ['(f) new large files of sizes already stored, with vs without (one more local read each)', withHash.seconds / withoutKnown.seconds, ''],
    ],
  };
}

export async function bench() {
  const only = process.env.LAFS_BENCH_ONLY ?? 'def';
  const grid = await startGridProcess();
  const none = { rows: [], ratios: [] };
  try {
    const d = only.includes('d') ? await incompressible(grid) : none;
    const e = only.includes('e') ? await mixed(grid) : none;
    const f = only.includes('f') ? await dedup(grid) : none;
    return {
      title: 'The least work: compression where it pays, contents stored once (embedded grid, own process)',
      header: ['run', 'MiB/s | MiB sent', 'seconds', 'peak RSS MiB', 'notes'],
      rows: [...d.rows, ...e.rows, ...f.rows],
      ratios: [...d.ratios, ...e.ratios, ...f.ratios],
    };
  } finally {
    grid.stop();
  }
}
