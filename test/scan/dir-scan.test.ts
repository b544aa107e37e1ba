/**
 * One directory in one call (native/scan.c through scan/dir-scan.ts) on real files: the same
 * entries, types and stats as Node's readdir and lstat; a symlink never followed; the `clean`
 * answer the attribute memo keeps; the bound on entries stat'ed in one call.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanCalls } from '../../src/native.js';
import { DT, scanDir, type ScanEntry } from '../../src/scan/dir-scan.js';
import { makeTree, tempDir, writeRaw } from '../support/tree.js';

const calls = scanCalls()!;

function all(path: string, opts: Parameters<typeof scanDir>[1] = { attrs: true }, how = calls): ScanEntry[] {
  const scan = scanDir(Buffer.from(path), opts, how);
  const out: ScanEntry[] = [];
  for (let e = scan.next(); e; e = scan.next()) out.push(e);
  expect(out).toHaveLength(scan.count);
  return out;
}

describe('a directory in one call', () => {
  it("gives Node's names, in byte order, with readdir's types and lstat's numbers", () => {
    const root = tempDir();
    makeTree(root, { b: { x: 'x' }, a: 'a', 'é': 'e', link: { symlink: 'a' } });
    writeRaw(root, Buffer.from([0x62, 0x5f, 0xff]), 'invalid utf-8');
    execFileSync('mkfifo', [join(root, 'fifo')]);
    const fast = all(root);
    const slow = all(root, { attrs: true }, undefined);
    expect(fast.map((e) => e.name)).toEqual(slow.map((e) => e.name));
    expect(fast.map((e) => e.type)).toEqual(slow.map((e) => e.type));
    expect(fast.map((e) => e.type)).toEqual([DT.REG, DT.DIR, DT.REG, DT.FIFO, DT.LNK, DT.REG]);
    for (const e of fast) {
      const st = lstatSync(Buffer.concat([Buffer.from(`${root}/`), e.name]), { bigint: true });
      expect([e.stat!.mode, e.stat!.nlink, e.stat!.dev, e.stat!.ino, e.stat!.size, e.stat!.mtimeNs, e.stat!.ctimeNs, e.stat!.uid, e.stat!.gid]).toEqual([
        Number(st.mode),
        st.nlink,
        st.dev,
        st.ino,
        st.size,
        st.mtimeNs,
        st.ctimeNs,
        Number(st.uid),
        Number(st.gid),
      ]);
      // No attributes here: listed as none, except for the symlink (never listed).
      expect(e.attrs).toEqual(e.type === DT.LNK ? undefined : Buffer.alloc(0));
    }
  });

  it('never follows a symlink given as the directory (a directory swapped for one since its lstat)', () => {
    const root = tempDir();
    makeTree(root, { real: { secret: 's' } });
    symlinkSync('real', join(root, 'swapped'));
    expect(() => scanDir(Buffer.from(join(root, 'swapped')), { attrs: false }, calls)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => scanDir(Buffer.from(join(root, 'gone')), { attrs: false }, calls)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('is clean when every entry was listed and none has an ACL or a capability; `unchangedBefore` gives older entries as having none, unasked', () => {
    const root = tempDir();
    makeTree(root, { plain: { a: 'a', l: { symlink: 'a' } }, acl: { a: 'a' }, dflt: { sub: {} }, user: { a: 'a' } });
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(root, 'acl', 'a')]);
    execFileSync('setfacl', ['-d', '-m', 'u::rwx,g::r-x,o::---', join(root, 'dflt', 'sub')]);
    execFileSync('setfattr', ['-n', 'user.k', '-v', 'v', join(root, 'user', 'a')]);
    const clean = (dir: string, opts = { attrs: true }) => scanDir(Buffer.from(join(root, dir)), opts, calls).clean;
    expect(clean('plain')).toBe(true);
    expect(clean('user')).toBe(true);
    expect(clean('acl')).toBe(false);
    expect(clean('dflt')).toBe(false);
    // Without the attributes listed, nothing is known.
    expect(clean('plain', { attrs: false })).toBe(false);
    // Listed the slow way: nothing is known either.
    expect(scanDir(Buffer.from(join(root, 'plain')), { attrs: true }, undefined).clean).toBe(false);
    // The caller's word that older entries have none: taken, unasked (the memo's soundness is
    // in the ctimes it trusts, attr-memo.test.ts).
    const [a] = all(join(root, 'acl'), { attrs: true, unchangedBefore: (BigInt(Date.now()) + 60_000n) * 1_000_000n });
    expect(a!.attrs).toEqual(Buffer.alloc(0));
    const [asked] = all(join(root, 'acl'), { attrs: true, unchangedBefore: 1n });
    expect(asked!.attrs!.toString('latin1')).toContain('system.posix_acl_access');
  });

  it('stats no more than maxEntries in one call: a bigger directory is listed the slow way', () => {
    const root = tempDir();
    mkdirSync(join(root, 'd'));
    for (let i = 0; i < 5; i++) writeFileSync(join(root, 'd', `f${i}`), '');
    expect(calls.scanDir(Buffer.from(join(root, 'd')), false, 4, 0n)).toBe(-1);
    expect(calls.scanDir(Buffer.from(join(root, 'd')), false, 5, 0n)).toBeInstanceOf(ArrayBuffer);
  });
});
