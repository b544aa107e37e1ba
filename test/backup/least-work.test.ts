/**
 * The least work possible: xz only where it pays (by name, by a sample of the contents, by the
 * size of a small file's xz form), and contents stored once (renames, copies, hard links and
 * identical files cost no upload), with generations and cleanup still exact.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, linkSync, mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, onTestFinished } from 'vitest';
import { backup, cacheRows, configArgs, project, readBack } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, uploadsDuring, useGrid } from '../support/grid.js';
import { tempDir } from '../support/tree.js';
import { startGrid } from '../../src/grid/server.js';

const env = useGrid();
const old = new Date(Date.now() - 3600_000);
const LOG = Buffer.from(Array.from({ length: 6000 }, (_, i) => `2026-11-23 05:00:${String(i % 60).padStart(2, '0')} INFO request ${i} served in ${i % 97} ms\n`).join(''));

function write(path: string, data: Buffer): void {
  writeFileSync(path, data);
  utimesSync(path, old, old);
}


describe('compression where it pays', () => {
  itEmbedded('text is compressed; random bytes, media names and a small incompressible file are stored raw; the summary counts each', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(src);
    write(join(src, 'app.log'), LOG);
    write(join(src, 'random.bin'), randomBytes(1 << 20));
    write(join(src, 'small-random.bin'), randomBytes(100_000));
    // A media name is taken at its word, even when the contents would compress.
    write(join(src, 'photo.jpg'), Buffer.concat([LOG, Buffer.from('photo')]));
    // A '+' path_filter rule overrides the list of compressed names.
    const scan = Buffer.concat([LOG, Buffer.from('scan')]);
    write(join(src, 'scan.raw.jpg'), scan);
    const p = project(dir, src, env.url, "destination: {encoding: {xz: {path_filter: ['+\\.raw\\.jpg$']}}}\n");
    const r = await backup(p, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { files: { uploaded: number }; stored: Record<string, number>; bytes: { xz_in: number } };
    expect(j.files.uploaded).toBe(5);
    expect(j.stored).toEqual({ xz: 2, raw_by_name: 1, raw_by_size: 0, raw_by_content: 2, raw: 0 });
    expect(j.bytes.xz_in).toBe(LOG.length + scan.length);
    const back = await readBack(env.url, JSON.parse(r.stdout).cap as string);
    const enc = (name: string) => back.get(name)!.metadata.enc ?? null;
    expect([enc('app.log'), enc('scan.raw.jpg'), enc('random.bin'), enc('small-random.bin'), enc('photo.jpg')]).toEqual(['xz', 'xz', null, null, null]);
    expect(back.get('random.bin')!.content!.length).toBe(1 << 20);
    expect(back.get('app.log')!.content!.equals(LOG)).toBe(true);
  });

  itEmbedded('the same bytes and settings give the same decision and the same caps; an unchanged file is not read again', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(src);
    write(join(src, 'a.log'), LOG);
    write(join(src, 'b.bin'), randomBytes(700_000));
    const caps: string[] = [];
    for (const sub of ['one', 'two']) {
      const p = project(join(dir), src, env.url, `source: {entry_cache: {path: '${join(dir, `${sub}.db`)}'}}\n`);
      const r = await backup(p);
      expect(r.code, r.stderr).toBe(0);
      caps.push(r.cap);
    }
    expect(caps[1]).toBe(caps[0]);
    const p = project(dir, src, env.url, `source: {entry_cache: {path: '${join(dir, 'one.db')}'}}\n`);
    const again = await backup(p, ['--json']);
    expect(JSON.parse(again.stdout).bytes.read).toBe(0);
  });
});

describe('caches from before compressed_names', () => {
  itEmbedded('a file stored as xz under the old rules (a row without enc) is reused, and still read as xz', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(src);
    write(join(src, 'photo.jpg'), Buffer.concat([LOG, Buffer.from('old')]));
    write(join(src, 'notes.txt'), Buffer.concat([LOG, Buffer.from('notes')]));
    const before = project(dir, src, env.url, 'destination: {encoding: {xz: {compressed_names: []}}}\n');
    expect((await backup(before)).code).toBe(0);
    // Rows as the schema before this one wrote them: no enc column value.
    const db = new Database(before.cache);
    db.prepare('UPDATE entries SET enc = NULL').run();
    db.close();
    const p = project(dir, src, env.url);
    const r = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(r.result.code, r.result.stderr).toBe(0);
    expect(r.uploaded).toEqual([]);
    expect(JSON.parse(r.result.stdout).files.reused).toBe(2);
    const back = await readBack(env.url, JSON.parse(r.result.stdout).cap as string);
    expect(back.get('photo.jpg')!.metadata.enc).toBe('xz');
    expect(back.get('notes.txt')!.metadata.enc).toBe('xz');
    expect(back.get('photo.jpg')!.content!.subarray(-3).toString()).toBe('old');
  });
});

describe('contents stored once', () => {
  itEmbedded('a renamed directory, a copied file and a hard link cost no upload; identical files in one run go up once', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(join(src, 'photos'), { recursive: true });
    for (let i = 0; i < 8; i++) write(join(src, 'photos', `p${i}.bin`), randomBytes(300_000 + i));
    write(join(src, 'small.txt'), Buffer.from('small and unique '.repeat(50)));
    // Twins in the first run: one upload.
    const twin = randomBytes(400_000);
    write(join(src, 'twin-a.bin'), twin);
    write(join(src, 'twin-b.bin'), twin);
    const p = project(dir, src, env.url);
    const first = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(first.result.code, first.result.stderr).toBe(0);
    expect(first.uploaded).toHaveLength(10);
    expect(JSON.parse(first.result.stdout).files.deduplicated).toBe(1);

    renameSync(join(src, 'photos'), join(src, 'pictures'));
    cpSync(join(src, 'small.txt'), join(src, 'small-copy.txt'), { preserveTimestamps: true });
    cpSync(join(src, 'pictures', 'p3.bin'), join(src, 'p3-copy.bin'), { preserveTimestamps: true });
    linkSync(join(src, 'twin-a.bin'), join(src, 'twin-link.bin'));
    const second = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(second.result.code, second.result.stderr).toBe(0);
    expect(second.uploaded).toEqual([]);
    const j = JSON.parse(second.result.stdout) as { files: { uploaded: number; deduplicated: number }; bytes: { sent: number } };
    expect(j.files.uploaded).toBe(0);
    expect(j.files.deduplicated).toBe(10);
    expect(j.bytes.sent).toBe(0);
    const back = await readBack(env.url, JSON.parse(second.result.stdout).cap as string);
    expect(back.get('p3-copy.bin')!.content!.length).toBe(300_003);
    expect(back.get('small-copy.txt')!.content!.toString()).toBe('small and unique '.repeat(50));
  });

  itEmbedded('a larger file is hashed before its upload only when stored contents, or a file in flight, could have its contents (rows without a size count as any)', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(src);
    // a.bin and a2.bin: the same size, different contents (their first blocks differ); a3.bin
    // is a2.bin again: whichever of the two comes second is hashed and takes the other's cap.
    for (const [name, size] of [['a.bin', 300_000], ['a2.bin', 300_000], ['b.bin', 300_001], ['c.bin', 700_000]] as const) write(join(src, name), randomBytes(size));
    cpSync(join(src, 'a2.bin'), join(src, 'a3.bin'), { preserveTimestamps: true });
    // A gateway taking 300 ms per request: a.bin is surely still in flight when a2.bin, next in
    // the queue, starts (else the cache would know its size by then, and a2.bin be hashed first).
    const slow = await startGrid({ delayMs: 300 });
    onTestFinished(() => slow.stop());
    const p = project(dir, src, slow.url);
    const read = async (): Promise<{ read: number; uploaded: number; deduplicated: number }> => {
      const r = await uploadsDuring(slow, () => backup(p, ['--json']));
      expect(r.result.code, r.result.stderr).toBe(0);
      const j = JSON.parse(r.result.stdout) as { bytes: { read: number }; files: { deduplicated: number } };
      return { read: j.bytes.read, uploaded: r.uploaded.length, deduplicated: j.files.deduplicated };
    };
    // A first backup: nothing stored has any of these sizes, so each file is read once, but for
    // the second of the twins (hashed to be matched).
    expect(await read()).toEqual({ read: 3 * 300_000 + 300_001 + 700_000, uploaded: 4, deduplicated: 1 });
    expect(cacheRows(p.cache, 'SELECT size FROM entries WHERE kind = 0 ORDER BY size').map((r) => r.size)).toEqual([300_000, 300_000, 300_000, 300_001, 700_000]);
    // New contents of a stored size are hashed first (and then sent); of a new size, read once.
    write(join(src, 'd.bin'), randomBytes(300_000));
    write(join(src, 'e.bin'), randomBytes(900_000));
    expect(await read()).toEqual({ read: 2 * 300_000 + 900_000, uploaded: 2, deduplicated: 0 });
    // A cache from before sizes were kept: its rows could have any size, so a new size is hashed first.
    const db = new Database(p.cache);
    db.exec('UPDATE entries SET size = NULL');
    db.close();
    write(join(src, 'f.bin'), randomBytes(1_100_000));
    expect(await read()).toEqual({ read: 2 * 1_100_000, uploaded: 1, deduplicated: 0 });
  });

  itEmbedded('cleanup stays exact: contents a newer backup used are still known after the older generation is forgotten', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    mkdirSync(src);
    const data = randomBytes(500_000);
    write(join(src, 'a.bin'), data);
    const p = project(dir, src, env.url);
    expect((await backup(p)).code).toBe(0);
    renameSync(join(src, 'a.bin'), join(src, 'b.bin'));
    expect((await backup(p)).code).toBe(0);
    const forgot = await runCli([...configArgs(p), 'cleanup', '-g', '1']);
    expect(forgot.code, forgot.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries WHERE sha256 IS NOT NULL AND enc IS NOT NULL')[0]!.n).toBe(1);
    write(join(src, 'c.bin'), data);
    const third = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(third.result.code, third.result.stderr).toBe(0);
    expect(third.uploaded).toEqual([]);
    expect(JSON.parse(third.result.stdout).files.deduplicated).toBe(1);
  });
});
