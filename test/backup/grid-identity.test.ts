/**
 * A cache knows which grid it belongs to (issue 24.5): a cache made on one grid and pointed at
 * another treats it as empty (one warning) and keeps the first grid's entries for going back;
 * the end of a backup checks that the gateway has the root it ended with. The "other grid" is a
 * second embedded grid, so the switching tests run against a real gateway too
 * (LAFS_TEST_GATEWAY): the real grid is then the first grid.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntryCache } from '../../src/cache/db.js';
import { chooseGrid, gridOfGeneration, readBook } from '../../src/cache/grid.js';
import { startGrid, type Grid } from '../../src/grid/server.js';
import { cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli, type CliResult } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { neverStored, plant } from '../support/planted.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
let other: Grid;
beforeAll(async () => {
  other = await startGrid();
});
afterAll(async () => {
  await other.stop();
});

const NO_XZ = 'destination: {encoding: {xz: {enabled: false}}}\n';

/** A project whose tree has three files that must be stored as CHK (LIT caps are on every grid). */
function tree(): Project {
  const dir = tempDir();
  makeTree(join(dir, 'src'), { a: randomBytes(3000), sub: { b: randomBytes(4000), deeper: { c: randomBytes(5000) } } });
  return project(dir, join(dir, 'src'), env.url, NO_XZ);
}

/** `p`'s arguments, with its gateway replaced by `url`. */
function at(p: Project, url: string): string[] {
  const file = join(p.dir, `at-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `destination: {url: '${url}'}\n`);
  return [...configArgs(p), '-c', file];
}

interface Made extends CliResult {
  cap: string;
  uploaded: number;
  warnings: string[];
}

async function backupAt(args: string[]): Promise<Made> {
  const r = await runCli([...args, 'backup', '--json']);
  const s = r.code === 0 ? (JSON.parse(r.stdout) as { cap: string; files: { uploaded: number } }) : undefined;
  return { ...r, cap: s?.cap ?? '', uploaded: s?.files.uploaded ?? -1, warnings: r.stderr.split('\n').filter((l) => / WARN /.test(l)) };
}

describe('a cache pointed at another grid (24.5)', () => {
  it('treats that grid as empty, with one warning, and keeps its own grid: switching back and forth uploads nothing again', async () => {
    const p = tree();
    const home = await backupAt(configArgs(p));
    expect(home.code, home.stderr).toBe(0);
    expect(home.uploaded).toBe(3);
    expect(home.warnings).toEqual([]);

    // The other grid, with nothing changed: before, the cache's root cap came back (exit 0),
    // and that grid answered 410 for it.
    const away = await backupAt(at(p, other.url));
    expect(away.code, away.stderr).toBe(0);
    expect(away.uploaded).toBe(3);
    expect(away.cap).not.toBe(home.cap);
    expect(away.warnings).toHaveLength(1);
    expect(away.warnings[0]).toMatch(/the gateway at http:\/\/127\.0\.0\.1:\d+\/uri is on a grid the entry cache has no entries for \(none of its 4 storage servers is one the cache has seen\): the cache is treated as empty for it/);
    const ls = await runCli([...at(p, other.url), 'ls', '-R', away.cap]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/deeper\/c/);

    // Back home: its own entries, nothing uploaded; and away again, the same.
    const back = await backupAt(configArgs(p));
    expect(back.code, back.stderr).toBe(0);
    expect([back.cap, back.uploaded]).toEqual([home.cap, 0]);
    expect(back.warnings).toHaveLength(1);
    expect(back.warnings[0]).toMatch(/is on another grid than the last backup went to \(one the entry cache knows\): this grid's own entries are used$/);
    const again = await backupAt(at(p, other.url));
    expect([again.cap, again.uploaded, again.warnings.length]).toEqual([away.cap, 0, 1]);
    const quiet = await backupAt(at(p, other.url));
    expect([quiet.cap, quiet.uploaded, quiet.warnings]).toEqual([away.cap, 0, []]);

    // check, through either gateway, checks only the backups that gateway's grid has.
    const checkHome = await runCli([...configArgs(p), 'check', '--json']);
    expect(checkHome.code, checkHome.stdout + checkHome.stderr).toBe(0);
    expect((JSON.parse(checkHome.stdout) as { generation: number }[]).map((o) => o.generation)).toEqual([3]);
    expect(checkHome.stderr).toMatch(/is on another grid than 1 of the entry cache's backups were made on: they are not checked through it, and the newest backup is one of them/);
    const checkAway = await runCli([...at(p, other.url), 'check', '--json']);
    expect(checkAway.code, checkAway.stdout + checkAway.stderr).toBe(0);
    expect((JSON.parse(checkAway.stdout) as { generation: number }[]).map((o) => o.generation)).toEqual([5]);
  });

  it('a cache from before grids were told apart adopts the grid that has its newest backup, and no other', async () => {
    const p = tree();
    const first = await backupAt(configArgs(p));
    expect(first.code, first.stderr).toBe(0);
    const forgetRecord = () => {
      const db = new Database(p.cache);
      db.prepare("DELETE FROM meta WHERE key = 'grids'").run();
      db.close();
    };
    forgetRecord();
    // Pointed at another grid first: its newest backup is not there, so the rows are not that grid's.
    const away = await backupAt(at(p, other.url));
    expect(away.code, away.stderr).toBe(0);
    expect(away.uploaded).toBe(3);
    expect(away.warnings).toHaveLength(1);
    // Its own grid then finds its rows (the newest backup of those rows is there).
    const home = await backupAt(configArgs(p));
    expect([home.code, home.cap, home.uploaded, home.warnings]).toEqual([0, first.cap, 0, []]);
    // And one whose first gateway has its newest backup adopts it silently.
    forgetRecord();
    const same = await backupAt(configArgs(p));
    expect([same.code, same.cap, same.uploaded, same.warnings]).toEqual([0, first.cap, 0, []]);
    const cache = EntryCache.open(p.cache, { readonly: true });
    expect(readBook(cache)?.grids.map((g) => g.tag)).toEqual([0]);
    cache.close();
  });
});

describe('the end of a backup: the gateway has the root it ended with (24.5)', () => {
  itEmbedded('a root the grid lost on a night with no change: not recorded (exit 1, one line), the grid forgotten, and the next night uploads it all again', async () => {
    const p = tree();
    const made = await backupAt(configArgs(p));
    expect(made.code, made.stderr).toBe(0);
    env.grid.damage(made.cap);
    const lost = await backupAt(configArgs(p));
    expect(lost.code).toBe(1);
    const last = lost.stderr.trim().split('\n').pop()!;
    expect(last).toMatch(
      /^lafs-backup: the gateway does not have the root directory this backup ended with \(GET \?t=json of cap#[0-9a-f]{10}: gateway answered 410: .*\), although the entry cache said every part of it was stored; the backup is not recorded\. The entry cache's \d+ entries for this grid are forgotten: the next backup uploads everything again$/,
    );
    expect(cacheRows(p.cache, 'SELECT generation FROM backups')).toEqual([{ generation: 1 }]);
    const again = await backupAt(configArgs(p));
    expect([again.code, again.cap, again.uploaded]).toEqual([0, made.cap, 3]);
    const check = await runCli([...configArgs(p), 'check']);
    expect(check.code, check.stdout).toBe(0);
  });

  it('a root cap the grid never had, in the cache (what a real gateway allows): the same', async () => {
    const p = tree();
    const made = await backupAt(configArgs(p));
    expect(made.code, made.stderr).toBe(0);
    expect(plant(p.cache, made.cap, neverStored('DIR2-CHK', 400))).toBeGreaterThan(0);
    const lost = await backupAt(configArgs(p));
    expect(lost.code).toBe(1);
    expect(lost.stderr.trim().split('\n').pop()).toMatch(/the backup is not recorded\. The entry cache's \d+ entries for this grid are forgotten: the next backup uploads everything again$/);
    const again = await backupAt(configArgs(p));
    expect([again.code, again.cap, again.uploaded]).toEqual([0, made.cap, 3]);
  });

  itEmbedded('with storage servers not connected, a root out of reach forgets nothing', async () => {
    const p = tree();
    const made = await backupAt(configArgs(p));
    expect(made.code, made.stderr).toBe(0);
    // Every row there before is there after (the run may add rows of its own: listing rows of
    // a tree that has aged past the trust window since the first run, say).
    const keys = () => new Set(cacheRows(p.cache, 'SELECT hex(key) AS k FROM entries').map((r) => r.k as string));
    const before = keys();
    for (const s of [0, 1, 2]) env.grid.setServer(s, false);
    try {
      const r = await backupAt(configArgs(p));
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').pop()).toMatch(/1 of the 4 storage servers the gateway lists are connected, so the root may only be out of reach: nothing is forgotten; run the backup again once they are$/);
    } finally {
      for (const s of [0, 1, 2]) env.grid.setServer(s, true);
    }
    const after = keys();
    expect([...before].filter((k) => !after.has(k))).toEqual([]);
    const r = await backupAt(configArgs(p));
    expect([r.code, r.cap, r.uploaded]).toEqual([0, made.cap, 0]);
  });
});

describe('grid identity from storage server ids (24.5)', () => {
  const open = () => EntryCache.open(join(tempDir(), 'cache.db'));
  const never = async () => {
    throw new Error('no backup to ask about');
  };

  it('servers replaced one at a time keep the grid; a gateway with none of them is another grid; no servers cannot tell', async () => {
    const cache = open();
    try {
      expect(await chooseGrid(cache, ['a', 'b', 'c', 'd'], 1, never)).toEqual({ state: 'adopted', tag: 0, servers: 4 });
      expect((await chooseGrid(cache, ['a', 'b', 'c', 'e'], 2, never)).state).toBe('same');
      expect((await chooseGrid(cache, ['e', 'f', 'g', 'h'], 3, never)).state).toBe('same');
      const away = await chooseGrid(cache, ['w', 'x', 'y', 'z'], 4, never);
      expect(away).toMatchObject({ state: 'new', servers: 4 });
      expect(away.tag).toBeGreaterThan(0);
      expect(await chooseGrid(cache, ['h'], 5, never)).toEqual({ state: 'returned', tag: 0, servers: 1 });
      // No servers listed: the grid of the last backup is used, and nothing is recorded.
      const before = cache.getMeta('grids');
      expect(await chooseGrid(cache, [], 6, never)).toEqual({ state: 'unknown', tag: 0, servers: 0 });
      expect(await chooseGrid(cache, undefined, 6, never)).toEqual({ state: 'unknown', tag: 0, servers: 0 });
      expect(cache.getMeta('grids')).toBe(before);
      const book = readBook(cache)!;
      expect(book.grids.map((g) => [g.tag, g.generations])).toEqual([
        [0, [[1, 3], [5, 5]]],
        [away.tag, [[4, 4]]],
      ]);
      expect([gridOfGeneration(book, 4), gridOfGeneration(book, 5), gridOfGeneration(book, 9)]).toEqual([away.tag, 0, undefined]);
    } finally {
      cache.close();
    }
  });

  it("another grid's rows are neither found nor overwritten", async () => {
    const cache = open();
    try {
      const key = Buffer.from('f\0'.padEnd(34, 'k'));
      const sha = Buffer.alloc(32, 7);
      await chooseGrid(cache, ['a'], 1, never);
      cache.startGeneration(false, '/src');
      cache.didUpload(key, 'file', 'URI:CHK:home', { ctimeNs: 1n, sha256: sha, enc: 'raw', size: 10 });
      const away = (await chooseGrid(cache, ['z'], 2, never)).tag;
      cache.useGrid(away);
      cache.startGeneration(false, '/src');
      expect(cache.fileDecision(key, 1n)).toEqual({ action: 'upload' });
      expect(cache.knownContent(sha, 'raw')).toBeUndefined();
      cache.didUpload(key, 'file', 'URI:CHK:away', { ctimeNs: 1n, sha256: sha, enc: 'raw', size: 10 });
      expect(cache.fileDecision(key, 1n)).toMatchObject({ action: 'reuse', cap: 'URI:CHK:away' });
      cache.useGrid(0);
      expect(cache.fileDecision(key, 1n)).toMatchObject({ action: 'reuse', cap: 'URI:CHK:home' });
      expect(cache.knownContent(sha, 'raw')).toEqual({ cap: 'URI:CHK:home', enc: 'raw' });
      expect(cache.forgetCaps(['URI:CHK:away'])).toBe(0);
      expect(cache.forgetCaps(['URI:CHK:home'])).toBe(1);
      cache.useGrid(away);
      expect(cache.fileDecision(key, 1n)).toMatchObject({ action: 'reuse', cap: 'URI:CHK:away' });
    } finally {
      cache.close();
    }
  });
});
