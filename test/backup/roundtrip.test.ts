/**
 * Phase 2 end to end: a tree with every kind of entry is backed up with the CLI, read back
 * through the client (t=json, downloads, xz decoding) and compared byte for byte and field
 * for field; then the incremental behaviour, counted at the grid.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodePath } from '../../src/scan/queue-codec.js';
import { mtimeText } from '../../src/core/mtime.js';
import { backup, cacheRows, project, readBack, type Project } from '../support/backup.js';
import { EXTERNAL, itEmbedded, useGrid } from '../support/grid.js';
import { expectRun, withoutSummary } from '../support/cli.js';
import { makeTree, tempDir, writeRaw } from '../support/tree.js';

const env = useGrid();
const INVALID = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]);

function fixture(root: string): void {
  const lines = Array.from({ length: 80_000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');
  makeTree(root, {
    empty: '',
    lit55: 'x'.repeat(55),
    chk56: 'y'.repeat(56),
    'big.log': lines.slice(0, 4 * 1024 * 1024),
    'random.bin': randomBytes(300 * 1024),
    'random-small.bin': randomBytes(6 * 1024),
    'name with spaces ': 'spaces',
    'ünïcödé 日本.txt': 'unicode',
    'new\nline': 'a newline in the name',
    nested: { a: { b: { c: { 'deep.txt': 'deep' } } }, 'empty-dir': {} },
    links: { rel: { symlink: '../lit55' }, abs: { symlink: '/etc/hostname' }, dangling: { symlink: 'nowhere' }, dirlink: { symlink: '../nested' } },
  });
  writeRaw(root, INVALID, 'invalid utf-8 name');
}

/** Every entry under root by its name in the backup (invalid UTF-8 names escaped), with lstat. */
function localTree(root: string): Map<string, { abs: Buffer; rel: Buffer }> {
  const out = new Map<string, { abs: Buffer; rel: Buffer }>();
  const visit = (abs: Buffer, rel: Buffer, names: string[]) => {
    for (const name of readdirSync(abs, { encoding: 'buffer' })) {
      const text = name.toString('utf8');
      const shown = Buffer.from(text).equals(name) ? text : encodePath(name);
      const childAbs = Buffer.concat([abs, Buffer.from('/'), name]);
      const childRel = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name;
      out.set([...names, shown].join('/'), { abs: childAbs, rel: childRel });
      if (lstatSync(childAbs).isDirectory()) visit(childAbs, childRel, [...names, shown]);
    }
  };
  visit(Buffer.from(root), Buffer.alloc(0), []);
  return out;
}

describe('backup, phase 2', () => {
  let p: Project;
  let first: string;
  beforeAll(async () => {
    const dir = tempDir();
    fixture(join(dir, 'src'));
    p = project(dir, join(dir, 'src'), env.url);
    if (!EXTERNAL) env.grid.resetStats();
    const r = expectRun(await backup(p));
    expect(withoutSummary(r.stderr)).toBe('');
    first = r.cap;
  });

  itEmbedded('stores every byte and every metadata field of the source', async () => {
    expect(first).toMatch(/^URI:DIR2-CHK:/);
    const back = await readBack(env.url, first);
    const local = localTree(p.source);
    expect([...back.keys()].sort()).toEqual([...local.keys()].sort());
    for (const [path, { abs, rel }] of local) {
      const st = lstatSync(abs, { bigint: true });
      const node = back.get(path)!;
      const m = node.metadata;
      expect(m.uid, path).toBe(String(st.uid));
      expect(m.gid, path).toBe(String(st.gid));
      expect(m.mtime, path).toBe(mtimeText(st.mtimeNs));
      if (st.isSymbolicLink()) {
        expect(m.mode, path).toBeUndefined();
        expect(node.content!.equals(readlinkSync(abs, { encoding: 'buffer' })), path).toBe(true);
      } else {
        expect(m.mode, path).toBe(Number(st.mode).toString(8));
      }
      if (st.isFile()) {
        expect(node.content!.equals(readFileSync(abs)), path).toBe(true);
        // Compressed from min_size on, unless the contents do not shrink (random bytes).
        expect(m.enc, path).toBe(st.size >= 5120n && !path.startsWith('random') ? 'xz' : undefined);
        // An xz file's edge says how long its plaintext is (the stored size does not); a raw one's does not need to.
        expect(m.size, path).toBe(m.enc === 'xz' ? String(st.size) : undefined);
      }
      if (st.isDirectory()) expect(node.type).toBe('dirnode');
      const base = rel.subarray(rel.lastIndexOf(0x2f) + 1);
      expect(m.rawname, path).toBe(base.equals(INVALID) ? INVALID.toString('base64') : undefined);
      expect(Object.keys(m).join(','), path).toMatch(/^uid,gid(,mode)?,mtime(,enc,size)?(,rawname)?$/);
    }
    expect(back.get('big.log')!.content!.length).toBe(4 * 1024 * 1024);
    expect(env.grid.stats.bytes_uploaded).toBeLessThan(1024 * 1024); // 4 MiB of text went up as xz
  });

  itEmbedded('a second run over the unchanged tree: zero PUT /uri, zero mkdir-immutable, the same root cap', async () => {
    env.grid.resetStats();
    const r = expectRun(await backup(p));
    expect(r.cap).toBe(first);
    expect(env.grid.stats.put_uri).toBe(0);
    expect(env.grid.stats.mkdir_immutable).toBe(0);
  });

  itEmbedded('one deep file changed: one PUT, one mkdir-immutable per ancestor', async () => {
    const f = join(p.source, 'nested/a/b/c/deep.txt');
    writeFileSync(f, 'deep, changed');
    const t = new Date(Date.now() - 1800_000);
    utimesSync(f, t, t);
    env.grid.resetStats();
    const r = expectRun(await backup(p));
    expect(env.grid.stats.put_uri).toBe(1);
    expect(env.grid.stats.mkdir_immutable).toBe(5); // c, b, a, nested, root
    expect((await readBack(env.url, r.cap)).get('nested/a/b/c/deep.txt')!.content!.toString()).toBe('deep, changed');
  });

  itEmbedded('chmod of one file: no upload at all, only the directories above it change', async () => {
    chmodSync(join(p.source, 'big.log'), 0o600);
    env.grid.resetStats();
    const r = expectRun(await backup(p));
    expect(env.grid.stats.put_uri).toBe(0);
    expect(env.grid.stats.mkdir_immutable).toBe(1);
    expect((await readBack(env.url, r.cap)).get('big.log')!.metadata.mode).toBe('100600');
  });

  it('rename of one file: the new root lists the new name and not the old', async () => {
    renameSync(join(p.source, 'chk56'), join(p.source, 'renamed56'));
    const r = expectRun(await backup(p));
    const back = await readBack(env.url, r.cap);
    expect(back.has('renamed56')).toBe(true);
    expect(back.has('chk56')).toBe(false);
    expect(back.get('renamed56')!.content!.toString()).toBe('y'.repeat(56));
  });

  itEmbedded('keeps generations and backups rows: every row a run used carries its generation', () => {
    const backups = cacheRows(p.cache, 'SELECT name, source, generation FROM backups ORDER BY id');
    expect(backups.map((b) => b.generation)).toEqual([1, 2, 3, 4, 5]);
    expect(backups.every((b) => b.name === 'src' && b.source === p.source)).toBe(true);
    const gens = cacheRows(p.cache, 'SELECT generation, count(*) AS n FROM entries GROUP BY generation ORDER BY generation');
    // Rows of the old deep.txt, its old directories and the old root/chk56 stayed behind; all else is at 5.
    expect(gens.at(-1)).toMatchObject({ generation: 5 });
    expect(gens.filter((g) => (g.generation as number) < 5).length).toBeGreaterThan(0);
    expect(statSync(p.cache).mode & 0o777).toBe(0o600);
  });
});

describe('backup options', () => {
  itEmbedded('--disable-deduplication uploads everything again and caches nothing', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a'.repeat(100), b: { c: 'c'.repeat(200) } });
    const p = project(dir, join(dir, 'src'), env.url);
    const r1 = await backup(p);
    env.grid.resetStats();
    const r2 = await backup(p, ['--disable-deduplication']);
    expect(r2.cap).toBe(r1.cap);
    expect(env.grid.stats.put_uri).toBe(2);
    expect(env.grid.stats.mkdir_immutable).toBe(2);
  });

  itEmbedded('a high concurrency (32) says nothing but the summary on stderr (no listener-leak warning from Node)', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}`, `file ${i} `.repeat(20)])));
    const p = project(dir, join(dir, 'src'), env.url, 'operation: {concurrency: 32}\n');
    const r = expectRun(await backup(p));
    expect(withoutSummary(r.stderr)).toBe('');
  });

  itEmbedded('a file modified too recently is uploaded but not cached, with a warning naming it', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { old: 'o'.repeat(100) });
    writeFileSync(join(dir, 'src', 'fresh.txt'), 'f'.repeat(100));
    const p = project(dir, join(dir, 'src'), env.url);
    expectRun(await backup(p), { stderr: /WARN "fresh\.txt" was modified too recently to trust; uploaded, not cached/ });
    env.grid.resetStats();
    await backup(p);
    expect(env.grid.stats.put_uri).toBe(1);
  });

  it('result destinations: a 0600 result file with "TIME SOURCE CAP", a link in a mutable directory, stdout off', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    const { TahoeClient } = await import('../../src/tahoe/client.js');
    const client = new TahoeClient({ url: env.url });
    const mutable = await client.mkdirMutable();
    const results = join(dir, 'results.txt');
    const p = project(dir, join(dir, 'src'), env.url, `destination: {result: {print_to_stdout: false, append_to_file: '${results}', append_to_lafs_dir: '${mutable}'}}\n`);
    const old = process.umask(0);
    const r = await backup(p);
    process.umask(old);
    expectRun(r, { stdout: '' });
    const line = readFileSync(results, 'utf8');
    expect(line).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${p.source} URI:DIR2-(CHK|LIT):\\S+\\n$`));
    expect(statSync(results).mode & 0o777).toBe(0o600);
    const info = await client.info(mutable);
    expect(info.children!.src!.ro_uri).toBe(line.trim().split(' ')[2]);
    await client.close();
  });

  it('the queue is rebuilt after a finished backup even if newer than the source (new files deep inside are found)', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { sub: { a: 'a' } });
    const p = project(dir, join(dir, 'src'), env.url);
    await backup(p);
    makeTree(join(dir, 'src', 'sub'), { b: 'b' }); // the root's mtime does not change
    const r = await backup(p);
    expect((await readBack(env.url, r.cap)).has('sub/b')).toBe(true);
  });

  it('--reuse-queue uploads the queue file as it is', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a', b: 'b' });
    const p = project(dir, join(dir, 'src'), env.url);
    await backup(p, ['--queue-only']);
    const q = readFileSync(p.queue, 'utf8').split('\n').filter((l) => !l.startsWith('b ')).join('\n');
    writeFileSync(p.queue, q); // hand-edited: b left out
    symlinkSync('a', join(dir, 'src', 'late-link')); // not in the queue: not in the backup
    const r = expectRun(await backup(p, ['--reuse-queue']));
    expect([...(await readBack(env.url, r.cap)).keys()]).toEqual(['a']);
  });
});

describe('a file that changes while it is read', () => {
  itEmbedded('is uploaded as read, not cached, with a warning naming it', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { 'growing.log': randomBytes(1_500_000) });
    const p = project(dir, join(dir, 'src'), env.url, `operation: {rate_limit: {bytes: '1/1e6'}}\ndestination: {encoding: {xz: {enabled: false}}}\n`);
    const { spawnCli } = await import('../support/cli.js');
    const { configArgs } = await import('../support/backup.js');
    const child = spawnCli([...configArgs(p), 'backup']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((ok) => env.grid.state.events.once('upload-start', () => ok()));
    await new Promise((ok) => setTimeout(ok, 300));
    const { appendFileSync } = await import('node:fs');
    appendFileSync(join(dir, 'src', 'growing.log'), 'more data');
    const code = await new Promise((ok) => child.on('close', ok));
    expect(code).toBe(0);
    expect(stderr).toMatch(/WARN "growing\.log" changed while it was read; uploaded as read, not cached/);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries WHERE kind = 0')[0]!.n).toBe(0);
  });
});
