/**
 * The attribute memo (scan/attr-memo.ts): the walk asks no entry of a remembered directory about
 * its ACLs and capabilities when neither changed since the last walk, and every change that
 * could give one an ACL or a capability — set on it, moved in, a directory renamed above —
 * is still seen. Real files, real ACLs (setfacl), the real walk; the CLI end to end.
 */
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { metadataReaders } from '../../src/meta/read.js';
import { AttrMemo, type MemoScope } from '../../src/scan/attr-memo.js';
import { buildQueue } from '../../src/scan/phase1.js';
import { readQueue } from '../../src/scan/queue-file.js';
import type { QueueEntry } from '../../src/scan/queue-codec.js';
import { backup, project, readBack } from '../support/backup.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const SCOPE: MemoScope = { source: '/src', selection: 'sha256:x' };
const nowNs = () => BigInt(Date.now()) * 1_000_000n;

/** One walk with the memo of the last (`prior`, text) and this one's time; its entries and its memo. */
async function walkWith(root: string, prior: string | undefined, t = nowNs()) {
  const memo = new AttrMemo(AttrMemo.decode(prior, SCOPE), t);
  const queuePath = join(tempDir(), 'queue.txt');
  await buildQueue({ source: root, queuePath, filter: [], readMeta: metadataReaders().readAclsAndCaps, attrMemo: memo });
  const byPath = new Map<string, QueueEntry>();
  for await (const { entry } of readQueue(queuePath)) byPath.set(entry.path.toString(), entry);
  return { byPath, memo: memo.encode(SCOPE) };
}

/** Enough for the kernel's coarse clock to move past the times just taken. */
const tick = () => sleep(30);

describe('the attribute memo', () => {
  it('keeps its scope and its order: another source or selection, or a damaged text, is no memo', () => {
    const memo = new AttrMemo(undefined, 5n);
    memo.clean({ dev: 2n, ino: 9n, ctimeNs: 1n } as never);
    memo.clean({ dev: 1n, ino: 7n, ctimeNs: 1n } as never);
    memo.clean({ dev: 1n, ino: 7n, ctimeNs: 1n } as never);
    const text = memo.encode(SCOPE);
    const prior = AttrMemo.decode(text, SCOPE)!;
    expect(prior.t).toBe(5n);
    expect([...prior.dirs]).toEqual([1n, 7n, 2n, 9n]);
    expect(AttrMemo.decode(text, { ...SCOPE, source: '/other' })).toBeUndefined();
    expect(AttrMemo.decode(text, { ...SCOPE, selection: 'sha256:y' })).toBeUndefined();
    expect(AttrMemo.decode(text.replace('"v":1', '"v":2'), SCOPE)).toBeUndefined();
    expect(AttrMemo.decode('{', SCOPE)).toBeUndefined();
    const unsorted = JSON.stringify({ ...JSON.parse(text), dirs: Buffer.from(new BigUint64Array([2n, 9n, 1n, 7n]).buffer).toString('base64') });
    expect(AttrMemo.decode(unsorted, SCOPE)).toBeUndefined();
    // A remembered directory, unchanged since: entries older than t are not asked.
    const next = new AttrMemo(prior, 10n);
    expect(next.since({ dev: 1n, ino: 7n, ctimeNs: 4n } as never)).toBe(5n);
    expect(next.since({ dev: 1n, ino: 7n, ctimeNs: 5n } as never)).toBe(0n);
    expect(next.since({ dev: 1n, ino: 8n, ctimeNs: 4n } as never)).toBe(0n);
  });

  it("remembers only clean directories, and what it remembers is what the walk doesn't ask again", async () => {
    const root = tempDir();
    makeTree(root, { clean: { a: 'a' }, acl: { a: 'a' } });
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'acl', 'a')]);
    await tick();
    const first = await walkWith(root, undefined);
    expect(first.byPath.get('acl/a')!.acls).toMatch(/u:1000:rwx/);
    const dirs = AttrMemo.decode(first.memo, SCOPE)!.dirs;
    // The root and `clean`, not `acl`.
    expect(dirs.length / 2).toBe(2);
    // The mechanism, shown with a memo that wrongly says `acl` is clean (and a time after its
    // ACL was set): its file is then not asked, and the ACL is missed. The walk trusts the memo
    // only as far as the ctimes do: the next tests show every real change is still seen.
    const forged = new AttrMemo(undefined, nowNs());
    for (const d of ['acl', 'clean', '']) forged.clean(await statOf(join(root, d)));
    const fooled = await walkWith(root, forged.encode(SCOPE));
    expect(fooled.byPath.get('acl/a')!.acls).toBeUndefined();
  });

  it('an ACL set after the last walk, on an entry of a remembered directory, is seen', async () => {
    const root = tempDir();
    makeTree(root, { d: { a: 'a', b: 'b' } });
    await tick();
    const first = await walkWith(root, undefined);
    await tick();
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'd', 'b')]);
    const second = await walkWith(root, first.memo);
    expect(second.byPath.get('d/b')!.acls).toMatch(/u:1000:rwx/);
    expect(second.byPath.get('d/a')!.acls).toBeUndefined();
  });

  it('an entry with an ACL moved into a remembered directory is seen', async () => {
    const root = tempDir();
    makeTree(root, { clean: { a: 'a' }, other: { withacl: 'x' } });
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'other', 'withacl')]);
    await tick();
    const first = await walkWith(root, undefined);
    await tick();
    renameSync(join(root, 'other', 'withacl'), join(root, 'clean', 'withacl'));
    const second = await walkWith(root, first.memo);
    expect(second.byPath.get('clean/withacl')!.acls).toMatch(/u:1000:rwx/);
  });

  it('a directory renamed above one whose entries have ACLs: they are still seen (the memo knows directories by inode, not path)', async () => {
    const root = tempDir();
    makeTree(root, { top: { d: { withacl: 'x' } }, x: { d: {} } });
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'top', 'd', 'withacl')]);
    await tick();
    const first = await walkWith(root, undefined);
    await tick();
    // `x/d` was clean; after the swap, the directory at that path is the one with the ACL.
    renameSync(join(root, 'x'), join(root, 'y'));
    renameSync(join(root, 'top'), join(root, 'x'));
    const second = await walkWith(root, first.memo);
    expect(second.byPath.get('x/d/withacl')!.acls).toMatch(/u:1000:rwx/);
  });

  it('end to end: an ACL set between two backups is in the second, whose walk asked only what changed', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { d: { a: 'a', b: 'b' }, e: { c: 'c' } });
    mkdirSync(join(src, 'f'));
    writeFileSync(join(src, 'f', 'g'), 'g');
    // Older than the clock's slack (2 s) at the first backup: the second may skip them.
    await sleep(2_100);
    const p = project(dir, src, env.url);
    const first = await backup(p);
    expect(first.code, first.stderr).toBe(0);
    // The first walk's memo is kept in the cache: the root, d, e and f were clean.
    const db = new Database(p.cache, { readonly: true });
    const kept = (db.prepare("SELECT value FROM meta WHERE key = 'attr_memo'").get() as { value: string }).value;
    db.close();
    expect(JSON.parse(kept)).toMatchObject({ v: 1, source: src });
    expect(Buffer.from(JSON.parse(kept).dirs, 'base64').length).toBe(4 * 16);
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(src, 'd', 'b')]);
    const second = await backup(p);
    expect(second.code, second.stderr).toBe(0);
    expect(second.cap).not.toBe(first.cap);
    const tree = await readBack(env.url, second.cap);
    expect(tree.get('d/b')!.metadata.acls).toMatch(/u:1000:rwx/);
    expect(tree.get('d/a')!.metadata.acls).toBeUndefined();
  });
});

async function statOf(path: string) {
  const { lstatSync } = await import('node:fs');
  const st = lstatSync(path, { bigint: true });
  return { dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs } as never;
}
