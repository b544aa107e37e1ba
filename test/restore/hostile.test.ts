/**
 * Backups made by hand, as an attacker or a broken tool would: a mutable directory linked into
 * itself, a child marked xz whose contents are not, and a DEST where a directory stands in the
 * way of a file (or a file in the way of a directory). One bad entry skips that entry with a
 * warning (exit 3); a cycle is not entered again; --force never deletes a directory tree.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configArgs, project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { DIRMETA, handmade, META } from '../support/handmade.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

describe('hostile and broken backups', () => {
  const h = handmade(env);

  it('a mutable directory linked into itself: restore and ls -R stop at the cycle (exit 3), the rest comes back', async () => {
    const loop = await h.c.mkdirMutable();
    const file = await h.c.putFile(() => Buffer.from('hello, cycle'.repeat(10)));
    await h.c.link(loop, 'file.txt', file);
    await h.c.link(loop, 'again', loop);
    const dest = join(tempDir(), 'dest');
    const r = await runCli([...configArgs(h.p), 'restore', loop, dest], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/is a directory that contains itself \(a cycle\); not entered again/);
    expect(readFileSync(join(dest, 'file.txt'), 'utf8')).toBe('hello, cycle'.repeat(10));
    // At most one level of the loop is made (the first link is a read cap of the write cap given).
    const depth = (d: string): number => (existsSync(join(d, 'again')) ? 1 + depth(join(d, 'again')) : 0);
    expect(depth(dest)).toBeLessThanOrEqual(1);
    const ls = await runCli([...configArgs(h.p), 'ls', loop, '-R'], { timeoutMs: 30_000 });
    expect(ls.code, ls.stderr).toBe(3);
    expect(ls.stderr).toMatch(/is a directory that contains itself \(a cycle\); not entered again/);
  });

  it('two children mapping to one name on disk (a symlink out and a directory): nothing outside DEST changes, with or without --force', async () => {
    for (const force of [false, true]) {
      const base = tempDir();
      const outside = join(base, 'outside');
      mkdirSync(outside, { mode: 0o755 });
      writeFileSync(join(outside, 'existing'), 'untouched');
      const before = { mode: statSync(outside).mode, mtime: statSync(outside).mtimeMs, list: readdirSync(outside) };
      const link = await h.c.putFile(() => Buffer.from(outside));
      const pwned = await h.c.putFile(() => Buffer.from('written through the link '.repeat(4)));
      const inner = await h.c.mkdirImmutable([{ name: 'pwned', type: 'filenode', cap: pwned, metadata: META }]);
      const root = await h.c.mkdirImmutable([
        // Ours: a symlink is a small file with uid and gid but no mode.
        { name: 'evil', type: 'filenode', cap: link, metadata: { uid: '0', gid: '0', mtime: '1700000000.000000000' } },
        { name: 'zzz', type: 'dirnode', cap: inner, metadata: { ...DIRMETA, mode: '40777', rawname: Buffer.from('evil').toString('base64') } },
      ]);
      const dest = join(base, 'dest');
      mkdirSync(dest);
      if (force) writeFileSync(join(dest, 'other'), 'x');
      const r = await runCli([...configArgs(h.p), 'restore', root, dest, ...(force ? ['--force'] : [])]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/another child of "\/" has the same name on disk/);
      expect(readdirSync(outside)).toEqual(before.list);
      expect(readFileSync(join(outside, 'existing'), 'utf8')).toBe('untouched');
      expect(statSync(outside).mode).toBe(before.mode);
      expect(statSync(outside).mtimeMs).toBe(before.mtime);
    }
  });

  it('a child marked xz whose contents are not xz is skipped with a warning; the others are restored', async () => {
    const bad = await h.c.putFile(() => Buffer.from('this is not xz at all '.repeat(5)));
    const good = await h.c.putFile(() => Buffer.from('fine '.repeat(20)));
    const root = await h.c.mkdirImmutable([
      { name: 'bad.txt', type: 'filenode', cap: bad, metadata: { ...META, enc: 'xz' } },
      { name: 'good.txt', type: 'filenode', cap: good, metadata: META },
    ]);
    const dest = join(tempDir(), 'dest');
    const r = await runCli([...configArgs(h.p), 'restore', root, dest]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stderr).toMatch(/cannot restore "\/bad\.txt": its contents are marked xz but do not decode/);
    expect(readFileSync(join(dest, 'good.txt'), 'utf8')).toBe('fine '.repeat(20));
    expect(readdirSync(dest).filter((n) => n.startsWith('.lafs-restore-'))).toEqual([]);
  });

  it('--force never deletes a directory tree for a file (or a file for a directory) without --replace-type-changes', async () => {
    const file = await h.c.putFile(() => Buffer.from('the file '.repeat(20)));
    const inner = await h.c.putFile(() => Buffer.from('inner '.repeat(20)));
    const sub = await h.c.mkdirImmutable([{ name: 'inner.txt', type: 'filenode', cap: inner, metadata: META }]);
    const root = await h.c.mkdirImmutable([
      { name: 'was-a-dir', type: 'filenode', cap: file, metadata: META },
      { name: 'was-a-file', type: 'dirnode', cap: sub, metadata: DIRMETA },
    ]);
    const dest = join(tempDir(), 'dest');
    mkdirSync(join(dest, 'was-a-dir', 'precious'), { recursive: true });
    writeFileSync(join(dest, 'was-a-dir', 'precious', 'data'), 'keep me');
    writeFileSync(join(dest, 'was-a-file'), 'keep me too');
    const r = await runCli([...configArgs(h.p), 'restore', root, dest, '--force']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/cannot restore "\/was-a-dir": a directory is in the way in DEST; not replaced/);
    expect(r.stderr).toMatch(/cannot restore "\/was-a-file": a file is in the way of this directory in DEST; not replaced/);
    expect(readFileSync(join(dest, 'was-a-dir', 'precious', 'data'), 'utf8')).toBe('keep me');
    expect(readFileSync(join(dest, 'was-a-file'), 'utf8')).toBe('keep me too');
    expect(readdirSync(dest).filter((n) => n.startsWith('.lafs-restore-'))).toEqual([]);
    // Asked for explicitly, the types are replaced.
    const forced = await runCli([...configArgs(h.p), 'restore', root, dest, '--force', '--replace-type-changes']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(dest, 'was-a-dir'), 'utf8')).toBe('the file '.repeat(20));
    expect(readFileSync(join(dest, 'was-a-file', 'inner.txt'), 'utf8')).toBe('inner '.repeat(20));
  });
});

describe('another process racing the restore', () => {
  it('swapping directories of a world-writable DEST for symlinks out, many times, changes nothing outside DEST', async () => {
    const dir = tempDir();
    const spec: Record<string, Record<string, string>> = {};
    for (let d = 0; d < 8; d++) spec[`d${d}`] = Object.fromEntries(Array.from({ length: 12 }, (_, f) => [`f${f}`, `file ${d}/${f} `.repeat(20)]));
    makeTree(join(dir, 'src'), spec);
    const p = project(dir, join(dir, 'src'), env.url);
    const made = await runCli([...configArgs(p), 'backup']);
    expect(made.code, made.stderr).toBe(0);
    const cap = made.stdout.trim();
    const outside = join(dir, 'outside');
    mkdirSync(outside, { mode: 0o755 });
    writeFileSync(join(outside, 'existing'), 'untouched');
    const before = () => ({ list: readdirSync(outside).sort(), mode: statSync(outside).mode, mtime: statSync(outside).mtimeMs, data: readFileSync(join(outside, 'existing'), 'utf8') });
    const expected = before();
    // The other user: as soon as a directory appears in DEST, move it aside and put a symlink
    // to `outside` in its place — in a tight loop, for as long as the restore runs.
    const swapper = `
      const fs = require('fs'), path = require('path');
      const [dest, outside] = process.argv.slice(1);
      let n = 0;
      for (const end = Date.now() + 60000; Date.now() < end; ) {
        for (let d = 0; d < 8; d++) {
          const p = path.join(dest, 'd' + d);
          try {
            if (fs.lstatSync(p).isDirectory()) { fs.renameSync(p, p + '.moved' + (n++)); fs.symlinkSync(outside, p); }
          } catch {}
        }
      }`;
    for (let round = 0; round < 10; round++) {
      const dest = join(dir, `dest${round}`);
      mkdirSync(dest);
      chmodSync(dest, 0o777);
      const racer = spawn(process.execPath, ['-e', swapper, dest, outside], { stdio: 'ignore' });
      try {
        const r = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
        expect([0, 3], r.stderr).toContain(r.code);
      } finally {
        racer.kill('SIGKILL');
      }
      expect(before(), `round ${round}`).toEqual(expected);
    }
  }, 120_000);
});
