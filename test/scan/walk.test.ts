/** Phase 1's walk on real trees: order, symlinks, special files, unreadable and vanishing entries. */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildQueue, NO_EXCLUDES } from '../../src/scan/phase1.js';
import { Selector } from '../../src/scan/select.js';
import { readQueue } from '../../src/scan/queue-file.js';
import { parentOf, type QueueEntry } from '../../src/scan/queue-codec.js';
import { walk, type SkipReason } from '../../src/scan/walk.js';
import { metadataReaders } from '../../src/meta/read.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { handToUnprivileged, makeTree, tempDir, unprivileged, writeRaw } from '../support/tree.js';

async function walkAll(root: string, filter: string[] = [], hooks: Partial<Parameters<typeof walk>[0]> = {}) {
  const entries: QueueEntry[] = [];
  const skipped: [string, SkipReason][] = [];
  for await (const batch of walk({ root: Buffer.from(root), select: new Selector({ filter, ...NO_EXCLUDES }), onSkip: (p, r) => skipped.push([p.toString('latin1'), r]), ...hooks })) entries.push(...batch);
  return { entries, skipped, paths: entries.map((e) => e.path.toString('latin1')) };
}

describe('walk', () => {
  it('puts children before their directory, in byte order, root last', async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { b: { z: 'z', a: { deep: 'd' } }, a: 'a', 'B': 'upper', c: {}, 'é': 'e-acute' });
    writeRaw(root, Buffer.from([0x62, 0x5f, 0xff]), 'invalid utf-8');
    const { paths, entries } = await walkAll(root);
    expect(paths).toEqual(['B', 'a', 'b/a/deep', 'b/a', 'b/z', 'b', 'b_\xff', 'c', 'é'.split('').map((c) => Buffer.from(c).toString('latin1')).join(''), '']);
    // The ordering invariant: every entry's parent appears after it.
    const seen = new Set<string>();
    for (const e of [...entries].reverse()) {
      const parent = parentOf(e.path);
      if (parent) expect(seen.has(parent.toString('latin1'))).toBe(true);
      seen.add(e.path.toString('latin1'));
    }
  });

  it('queues symlinks as symlinks (mode empty) and never follows them', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'outside'), { secret: 'not to be backed up' });
    const root = join(dir, 'src');
    makeTree(root, { 'to-outside': { symlink: '../outside' }, 'loop': { symlink: '.' }, dangling: { symlink: 'nope' } });
    const { entries, paths } = await walkAll(root);
    expect(paths).toEqual(['dangling', 'loop', 'to-outside', '']);
    expect(entries.slice(0, 3).every((e) => e.mode === null)).toBe(true);
  });

  it('skips sockets and FIFOs with a reason, and goes on', async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { a: 'a', z: 'z' });
    execFileSync('mkfifo', [join(root, 'fifo')]);
    const server = createServer();
    await new Promise<void>((ok) => server.listen(join(root, 'sock'), () => ok()));
    const { paths, skipped } = await walkAll(root);
    server.close();
    expect(paths).toEqual(['a', 'z', '']);
    expect(skipped).toEqual([['fifo', 'special'], ['sock', 'special']]);
  });

  it('listed the slow way (no addon, or a huge directory): an entry that vanishes between readdir and lstat is reported and skipped', async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { a: 'a', b: 'b', c: { x: 'x' }, d: 'd' });
    const { paths, skipped } = await walkAll(root, [], {
      scan: null,
      readMeta: (abs) => {
        if (abs.toString().endsWith('/a')) {
          rmSync(join(root, 'b'));
          rmSync(join(root, 'c'), { recursive: true });
        }
        return {};
      },
    });
    expect(paths).toEqual(['a', 'd', '']);
    expect(skipped).toEqual([['b', 'vanished'], ['c', 'vanished']]);
  });

  it("read in one call per directory: a file removed after its directory's scan is queued as the scan saw it; a directory removed before it is opened is reported and skipped", async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { a: 'a', b: 'b', c: { x: 'x' }, d: 'd' });
    const { paths, skipped } = await walkAll(root, [], {
      onQueued: (e) => {
        if (e.path.toString() === 'a') {
          rmSync(join(root, 'b'));
          rmSync(join(root, 'c'), { recursive: true });
        }
      },
    });
    expect(paths).toEqual(['a', 'b', 'd', '']);
    expect(skipped).toEqual([['c', 'vanished']]);
  });

  it('both ways of listing a directory (the addon\'s one call, Node\'s readdir and an lstat each) queue the same lines', async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { b: { z: 'z', a: { deep: 'd' } }, a: 'a', c: {}, 'é': 'e', acl: 'with an ACL', dflt: {}, link: { symlink: 'a' }, dangling: { symlink: 'nope' } });
    writeRaw(root, Buffer.from([0x62, 0x5f, 0xff]), 'invalid utf-8');
    execFileSync('mkfifo', [join(root, 'fifo')]);
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'acl')]);
    execFileSync('setfacl', ['-d', '-m', 'u::rwx,g::r-x,o::---', join(root, 'dflt')]);
    if (process.getuid?.() === 0) {
      writeFileSync(join(root, 'cap'), 'x');
      execFileSync('setcap', ['cap_net_raw+ep', join(root, 'cap')]);
    }
    const readMeta = metadataReaders().readAclsAndCaps;
    const fast = await walkAll(root, [], { readMeta });
    const slow = await walkAll(root, [], { readMeta, scan: null });
    expect(fast.entries).toEqual(slow.entries);
    expect(fast.skipped).toEqual(slow.skipped);
    expect(fast.entries.find((e) => e.path.toString() === 'acl')!.acls).toMatch(/u:1000:rwx/);
    expect(fast.entries.find((e) => e.path.toString() === 'dflt')!.acls).toMatch(/^d:/);
    if (process.getuid?.() === 0) expect(fast.entries.find((e) => e.path.toString() === 'cap')!.caps).toBe('cap_net_raw=ep');
  });

  it('excluded directories are not descended into', async () => {
    const root = join(tempDir(), 'src');
    makeTree(root, { keep: { f: '1' }, cache: { big: '2', sub: { f: '3' } } });
    const { paths, skipped } = await walkAll(root, ['-/cache/$']);
    expect(paths).toEqual(['keep/f', 'keep', '']);
    expect(skipped).toEqual([['cache', 'excluded']]);
  });
});

describe('backup --queue-only (as an unprivileged user, so permissions bite)', () => {
  function setup(filter: string[]) {
    const dir = tempDir();
    const root = join(dir, 'src');
    makeTree(root, { ok: 'fine', locked: { hidden: 'h' }, sub: { 'no-read': 'secret', after: 'a' } });
    chmodSync(join(root, 'locked'), 0o000);
    chmodSync(join(root, 'sub', 'no-read'), 0o000);
    chmodSync(join(root, 'sub'), 0o755);
    const work = join(dir, 'work');
    mkdirSync(work);
    handToUnprivileged(work);
    writeFileSync(join(work, 'c.yaml'), `source: {path: ${root}, queue: {path: ${join(work, 'q.txt')}}}\nfilter: ${JSON.stringify(filter)}\n`);
    return { root, work };
  }

  it('an unreadable directory is reported with its path, skipped, and the exit code says incomplete', async () => {
    const { work } = setup([]);
    const r = await runCli(['-c', join(work, 'c.yaml'), 'backup', '--queue-only'], unprivileged());
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot read "locked": permission denied \(EACCES\); skipped/);
    const q = readFileSync(join(work, 'q.txt'), 'utf8');
    expect(q).not.toMatch(/^locked /m);
    expect(q).toMatch(/^sub\/no-read /m); // listed: its contents are read in phase 2
    expect(q).toMatch(/^ok /m);
  });

  it('an unreadable directory that the filter excludes is never read: no error', async () => {
    const { work } = setup(['-/locked/$']);
    const r = await runCli(['-c', join(work, 'c.yaml'), 'backup', '--queue-only'], unprivileged());
    expect(withoutSummary(r.stderr)).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('queue file', () => {
  it('is written atomically: a failing walk leaves the old queue intact and no temporary file', async () => {
    const dir = tempDir();
    const root = join(dir, 'src');
    makeTree(root, { a: 'a' });
    const queuePath = join(dir, 'q.txt');
    await buildQueue({ source: root, queuePath, filter: [] });
    const before = readFileSync(queuePath, 'utf8');
    await expect(
      buildQueue({ source: root, queuePath, filter: [], readMeta: () => { throw new Error('disk on fire'); } }),
    ).rejects.toThrow(/disk on fire/);
    expect(readFileSync(queuePath, 'utf8')).toBe(before);
    expect(execFileSync('ls', [dir], { encoding: 'utf8' }).trim().split('\n')).toEqual(['q.txt', 'src']);
  });

  it('is created mode 0600 whatever the umask, and reads back entry for entry', async () => {
    const dir = tempDir();
    const root = join(dir, 'src');
    makeTree(root, { 'a b ': 'x', nested: { 'new\nline': 'y' } });
    const queuePath = join(dir, 'q.txt');
    const old = process.umask(0);
    try {
      await buildQueue({ source: root, queuePath, filter: [] });
    } finally {
      process.umask(old);
    }
    expect(statSync(queuePath).mode & 0o777).toBe(0o600);
    const back: string[] = [];
    for await (const { entry } of readQueue(queuePath)) back.push(entry.path.toString());
    expect(back).toEqual(['a b ', 'nested/new\nline', 'nested', '']);
  });
});
