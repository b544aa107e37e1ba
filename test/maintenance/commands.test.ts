/** list, cleanup and check end to end, against the embedded grid. */
import { createHash } from 'node:crypto';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const old = () => new Date(Date.now() - 3600_000);

function change(p: Project, rel: string, content: string): void {
  const f = join(p.source, rel);
  writeFileSync(f, content);
  utimesSync(f, old(), old());
}

async function storageIndex(cap: string): Promise<string> {
  const c = new TahoeClient({ url: env.url });
  const v = (await c.info(cap)).verify_uri!;
  await c.close();
  return v.split(':')[2]!;
}

const rowsByGen = (p: Project) =>
  Object.fromEntries(cacheRows(p.cache, 'SELECT generation, count(*) AS n FROM entries GROUP BY generation').map((r) => [r.generation, r.n]));

describe('cleanup', () => {
  let p: Project;
  let mutable: string;
  let results: string;
  const caps: string[] = [];
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), b: 'b'.repeat(100), c: 'c'.repeat(100) });
    const client = new TahoeClient({ url: env.url });
    mutable = await client.mkdirMutable();
    await client.close();
    results = join(dir, 'results.txt');
    p = project(dir, join(dir, 'src'), env.url, `destination: {result: {append_to_file: '${results}', append_to_lafs_dir: '${mutable}'}}\n`);
    caps.push((await backup(p)).cap);
    change(p, 'b', 'B'.repeat(100));
    change(p, 'd', 'd'.repeat(100));
    caps.push((await backup(p)).cap);
    change(p, 'c', 'C'.repeat(100));
    caps.push((await backup(p)).cap);
    expect(new Set(caps).size).toBe(3);
  });

  it('lists the three backups (text and JSON)', async () => {
    const text = await runCli([...configArgs(p), 'list']);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^NAME\s+GEN\s+FINISHED\s+LAST CHECK\s+ROOT CAP$/);
    expect(text.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['1', '2', '3']);
    const json = JSON.parse((await runCli([...configArgs(p), 'list', '--json'])).stdout);
    expect(json.backups.map((b: { cap: string }) => b.cap)).toEqual(caps);
    expect(json.backups[0]).toMatchObject({ name: 'src', source: p.source, generation: 1, last_check: null });
    expect(json.backups[0].finished).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('-e -n prints the storage indexes only the middle backup uses, and forgets nothing', async () => {
    const before = rowsByGen(p);
    const r = await runCli([...configArgs(p), 'cleanup', '-e', '-', '-n', caps[1]!]);
    expect(r.code, r.stderr).toBe(0);
    const sis = r.stdout.trim().split('\n');

    // Every file of the middle backup is also in the first or the third (b and d went on to
    // the third, c came from the first): only its root directory is its alone.
    expect(sis).toEqual([await storageIndex(caps[1]!)]);
    const c = new TahoeClient({ url: env.url });
    const shared = await Promise.all(['a', 'b', 'c', 'd'].map(async (n) => storageIndex((await c.info(caps[1]!, [n])).ro_uri!)));
    await c.close();
    for (const si of shared) expect(sis).not.toContain(si);
    expect(rowsByGen(p)).toEqual(before);
  });

  itEmbedded('cleanup of the middle backup removes exactly its generation rows; the next backup uploads nothing the newest had', async () => {
    const before = rowsByGen(p);
    expect(before[2]).toBeGreaterThan(0);
    const r = await runCli([...configArgs(p), 'cleanup', caps[1]!]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/forgetting backup "src", generation 2/);
    const after = rowsByGen(p);
    expect(after[2]).toBeUndefined();
    expect(after[1]).toBe(before[1]);
    expect(after[3]).toBe(before[3]);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups ORDER BY id')).toEqual([{ generation: 1 }, { generation: 3 }]);
    expect(readFileSync(results, 'utf8')).not.toContain(caps[1]!);
    expect(readFileSync(results, 'utf8')).toContain(caps[0]!);
    env.grid.resetStats();
    const next = await backup(p);
    expect(next.cap).toBe(caps[2]);
    expect(env.grid.stats.put_uri).toBe(0);
  });

  it('--up-to forgets older generations too; the result file and the mutable directory stop listing them', async () => {
    change(p, 'a', 'A'.repeat(100));
    const fourth = (await backup(p)).cap;
    // The newest backup is linked in the mutable directory; forget everything up to it.
    const r = await runCli([...configArgs(p), 'cleanup', '--up-to', fourth]);
    expect(r.code, r.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n).toBe(0);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries')[0]!.n).toBe(0);
    expect(readFileSync(results, 'utf8').trim()).toBe('');
    const c = new TahoeClient({ url: env.url });
    expect(Object.keys((await c.info(mutable)).children ?? {})).toEqual([]);
    await c.close();
  });

  it('refuses garbage and unknown caps in one line, exit 2', async () => {
    for (const [arg, re] of [
      ['not-a-cap', /cleanup: cap 1: not a valid Tahoe-LAFS cap: "not-a-cap"/],
      ['URI:CHK:garbage', /cleanup: cap 1: not a valid Tahoe-LAFS cap: cap#[0-9a-f]{10}$/m],
      ['URI:DIR2-LIT:', /cleanup: cap#[0-9a-f]{10} is not a backup in the entry cache/],
    ] as const) {
      const r = await runCli([...configArgs(p), 'cleanup', arg]);
      expect(r.code, arg).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });
});

describe('cleanup with retention', () => {
  it('--dry-run changes nothing (the database is byte for byte the same); a policy forgetting everything is refused', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const p = project(dir, join(dir, 'src'), env.url);
    for (let i = 0; i < 4; i++) {
      change(p, 'a', `version ${i}`);
      await backup(p);
    }
    const sum = () => createHash('sha256').update(readFileSync(p.cache)).digest('hex');
    const before = sum();
    const dry = await runCli([...configArgs(p), 'cleanup', '--keep-last', '2', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.match(/would forget backup/g)).toHaveLength(2);
    expect(sum()).toBe(before);
    const real = await runCli([...configArgs(p), 'cleanup', '--keep-last', '2']);
    expect(real.code).toBe(0);
    expect(cacheRows(p.cache, 'SELECT generation FROM backups ORDER BY generation')).toEqual([{ generation: 3 }, { generation: 4 }]);
    const none = await runCli([...configArgs(p), 'cleanup', '--keep-last', '0']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--keep-last: expected a whole number ≥ 1/);
    const mixed = await runCli([...configArgs(p), 'cleanup', '--keep-daily', '1', '-g', '3']);
    expect(mixed.code).toBe(2);
  });
});

describe('check', () => {
  let p: Project;
  let first: string;
  let second: string;
  beforeAll(async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { 'big.bin': 'x'.repeat(10_000), sub: { 'deep.txt': 'd'.repeat(300) }, 'tiny': 'lit' });
    p = project(dir, join(dir, 'src'), env.url, "destination: {encoding: {xz: {enabled: false}}}\n");
    first = (await backup(p)).cap;
    change(p, 'tiny', 'changed');
    second = (await backup(p)).cap;
  });

  itEmbedded('a healthy backup: nothing printed, exit 0, leases renewed, check time recorded', async () => {
    const file = (await new TahoeClient({ url: env.url }).info(second, ['big.bin'])).ro_uri!;
    const leases = env.grid.object(file)!.leaseRenewals;
    const r = await runCli([...configArgs(p), 'check', second]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(env.grid.object(file)!.leaseRenewals).toBe(leases + 1);
    expect(cacheRows(p.cache, 'SELECT ts_check FROM backups WHERE generation = 2')[0]!.ts_check).toBeGreaterThan(0);
    await runCli([...configArgs(p), 'check', '-n', second]);
    expect(env.grid.object(file)!.leaseRenewals).toBe(leases + 1);
  });

  itEmbedded('an unhealthy file is printed in the default format and the exit code is non-zero; --repair heals it', async () => {
    const c = new TahoeClient({ url: env.url });
    const file = (await c.info(second, ['sub', 'deep.txt'])).ro_uri!;
    await c.close();
    env.grid.damage(file, 1);
    const r = await runCli([...configArgs(p), 'check', second]);
    expect(r.code).toBe(4);
    expect(r.stdout.trim()).toBe('src: /sub/deep.txt (file): Not Healthy: 3 shares (enc 2-of-4)');
    const custom = await runCli([...configArgs(p), 'check', '-e', '-f', '{backup[name]} {0[path]} {0[check-results][results][count-good-share-hosts]}', second]);
    expect(custom.stdout).toBe('');
    expect(withoutSummary(custom.stderr).trim()).toBe('src sub/deep.txt 3');
    const repaired = await runCli([...configArgs(p), 'check', '--repair', second]);
    expect(repaired.code, repaired.stdout).toBe(0);
    expect(repaired.stdout).toBe('');
    expect(env.grid.object(file)!.sharesGood).toBe(4);
    expect((await runCli([...configArgs(p), 'check', second])).code).toBe(0);
  });

  itEmbedded('an unrecoverable directory gives the gateway error by name, not a crash; a gone backup is reported by name', async () => {
    const c = new TahoeClient({ url: env.url });
    const sub = (await c.info(first, ['sub'])).ro_uri!;
    await c.close();
    const dir = tempDir();
    makeTree(join(dir, 'other'), { sub: { 'deep.txt': 'd'.repeat(300), extra: 'e'.repeat(100) } });
    const q = project(dir, join(dir, 'other'), env.url);
    const other = (await backup(q)).cap;
    const c2 = new TahoeClient({ url: env.url });
    const otherSub = (await c2.info(other, ['sub'])).ro_uri!;
    await c2.close();
    env.grid.damage(otherSub);
    const r = await runCli([...configArgs(q), 'check', '--json']);
    expect(r.code).toBe(4);
    const [out] = JSON.parse(r.stdout);
    expect(out).toMatchObject({ name: 'other', generation: 1, healthy: false });
    expect(out.error).toMatch(/^the gateway stopped the check: NoSharesError/);
    expect(r.stdout).not.toContain('URI:');
    // A root with no shares at all: like a real gateway, the stream reports the root (0 shares)
    // and then cannot list it.
    env.grid.damage(other);
    const dead = await runCli([...configArgs(q), 'check']);
    expect(dead.code).toBe(4);
    expect(dead.stdout.split('\n')[0]).toBe('other: / (directory): Not Healthy: 0 shares (enc 2-of-4)');
    expect(dead.stdout).toMatch(/^other: check failed: the gateway stopped the check: NoSharesError/m);
    // A directory the gateway answers 410 for (a mutable one whose shares are all gone) is reported by name.
    const c3 = new TahoeClient({ url: env.url });
    const mutable = await c3.mkdirMutable();
    await c3.close();
    env.grid.damage(mutable);
    const gone = await runCli([...configArgs(q), 'check', mutable]);
    expect(gone.code).toBe(4);
    expect(gone.stdout).toMatch(/^cap#[0-9a-f]{10}: check failed: the backup is gone from the grid \(410/);
    expect(sub).toBeTruthy();
  });

  it('-a picks the backup checked longest ago, across runs', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: 'f' });
    const q = project(dir, join(dir, 'src'), env.url);
    const caps: string[] = [];
    for (let i = 0; i < 3; i++) {
      change(q, 'f', `f${i}`);
      caps.push((await backup(q)).cap);
    }
    const picked: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await runCli([...configArgs(q), 'check', '-a', '--json']);
      expect(r.code).toBe(0);
      picked.push(JSON.parse(r.stdout)[0].generation);
    }
    expect(picked).toEqual([1, 2, 3, 1]);
  });

  it('garbage caps are refused in one line, exit 2', async () => {
    const r = await runCli([...configArgs(p), 'check', 'garbage']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^lafs-backup: check: cap 1: not a valid Tahoe-LAFS cap: "garbage"\n$/);
  });
});

describe('list -g', () => {
  it('lists the cache entries of an unfinished generation', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { keep: 'k'.repeat(100) });
    const p = project(dir, join(dir, 'src'), env.url);
    await backup(p);
    change(p, 'new.txt', 'n'.repeat(100));
    // A run that dies before its backup is recorded: its rows stay under a generation of their own.
    const { EntryCache } = await import('../../src/cache/db.js');
    const cache = EntryCache.open(p.cache);
    cache.startGeneration(false, p.source);
    cache.didUpload(Buffer.concat([Buffer.from('new.txt'), Buffer.from([0]), Buffer.alloc(32)]), 'file', 'URI:LIT:nbswy3dpeb3w64tmmqfa');
    cache.close();
    const r = await runCli([...configArgs(p), 'list', '-g']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/generation 2 \(no finished backup\): 1 cache entries\n {2}file {4}"new\.txt" URI:LIT:nbswy3dpeb3w64tmmqfa/);
    const json = JSON.parse((await runCli([...configArgs(p), 'list', '-g', '1', '--json'])).stdout);
    expect(json.generations[0]).toMatchObject({ generation: 1, finished: true });
    expect(new Set(json.generations[0].entries.map((e: { path?: string }) => e.path ?? null))).toEqual(new Set([null, 'keep']));
    const forgot = await runCli([...configArgs(p), 'cleanup', '-g', '2']);
    expect(forgot.code, forgot.stderr).toBe(0);
    expect((await runCli([...configArgs(p), 'list', '-g'])).stdout).not.toContain('generation 2');
  });
});
