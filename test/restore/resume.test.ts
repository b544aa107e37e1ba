/**
 * A restore that was cut off is finished by running it again with --force: files already in
 * place as the backup says are not downloaded again (counted on the embedded grid), their
 * metadata is applied again, the temporary files the killed run left are removed, and the
 * result is the same as a clean restore. `diff` never lists those temporary files.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrid, type Grid } from '../../src/grid/server.js';
import { getXattr, listXattrs } from '../../src/meta/xattr.js';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { CLI, runCli, withoutSummary } from '../support/cli.js';
import { isRoot, makeTree, tempDir } from '../support/tree.js';

/** Every entry under `root` (files and directories, by path), with what a restore must give it. */
function describeTree(root: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const visit = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const st = lstatSync(abs, { bigint: true });
      const d: Record<string, unknown> = { mode: (Number(st.mode) & 0o7777).toString(8), uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs, nlink: st.nlink };
      d.xattrs = Object.fromEntries(listXattrs(Buffer.from(abs)).map((n) => [n.toString(), getXattr(Buffer.from(abs), n).toString('hex')]));
      if (st.isSymbolicLink()) d.target = readlinkSync(abs);
      else if (st.isFile()) d.sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
      out[relative(root, abs)] = d;
      if (st.isDirectory()) visit(abs);
    }
  };
  visit(root);
  return out;
}

/** Regular files under `root` by path (temporary files apart), and the temporary files. */
function filesIn(root: string): { files: string[]; temps: string[] } {
  const files: string[] = [];
  const temps: string[] = [];
  const visit = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const st = lstatSync(abs);
      if (st.isDirectory()) visit(abs);
      else if (name.startsWith('.lafs-restore-')) temps.push(relative(root, abs));
      else if (st.isFile()) files.push(relative(root, abs));
    }
  };
  visit(root);
  return { files: files.sort(), temps };
}

describe('a restore run again after it was cut off', () => {
  // A grid of its own that takes 40 ms per request: the restore is slow enough to be killed halfway.
  let grid: Grid;
  let p: Project;
  let cap: string;
  const all: string[] = [];
  const xzFiles = new Set<string>();
  beforeAll(async () => {
    grid = await startGrid({ delayMs: 40 });
    const dir = tempDir();
    const spec: Record<string, Record<string, Buffer | string>> = {};
    for (const d of ['one', 'two', 'three']) {
      spec[d] = {};
      for (let i = 0; i < 12; i++) spec[d]![`f${i}.bin`] = randomBytes(20_000 + i);
      // Text compresses: stored xz (its size on disk is not in the listing, so it is always downloaded).
      spec[d]!['notes.txt'] = `notes of ${d}\n`.repeat(3000);
    }
    makeTree(join(dir, 'src'), spec);
    execFileSync('setfattr', ['-n', 'user.origin', '-v', 'kept', join(dir, 'src', 'one', 'f1.bin')]);
    chmodSync(join(dir, 'src', 'two', 'f2.bin'), 0o640);
    if (isRoot) chownSync(join(dir, 'src', 'three', 'f3.bin'), 1000, 1000);
    const old = new Date('2024-05-06T07:08:09.123Z');
    for (const d of ['one', 'two', 'three']) {
      for (const f of readdirSync(join(dir, 'src', d))) utimesSync(join(dir, 'src', d, f), old, old);
      utimesSync(join(dir, 'src', d), old, old);
    }
    p = project(dir, join(dir, 'src'), grid.url, 'operation: {concurrency: 2}\n');
    const made = await backup(p);
    expect(made.code, made.stderr).toBe(0);
    cap = made.cap;
    for (const d of ['one', 'two', 'three']) for (const f of readdirSync(join(dir, 'src', d))) all.push(`${d}/${f}`);
    for (const d of ['one', 'two', 'three']) xzFiles.add(`${d}/notes.txt`);
  });
  afterAll(async () => {
    await grid?.stop();
  });

  it('SIGKILLed, then run again with --force: only what is missing is downloaded, leftovers are removed, the result is a clean restore', async () => {
    const clean = join(tempDir(), 'clean');
    const c = await runCli([...configArgs(p), 'restore', cap, clean]);
    expect(c.code, c.stderr).toBe(0);

    // Killed once some files are in place and some temporary files are being written. Under
    // load the temporary file seen may be renamed before the signal lands: then try again.
    let dest = '';
    let cut = { files: [] as string[], temps: [] as string[] };
    for (let attempt = 0; attempt < 5 && !cut.temps.length; attempt++) {
      dest = join(tempDir(), 'dest');
      const child = spawn(process.execPath, [CLI, ...configArgs(p), 'restore', cap, dest], { stdio: 'ignore' });
      const closed = new Promise((ok) => child.on('close', ok));
      for (;;) {
        await new Promise((ok) => setTimeout(ok, 10));
        const now = filesIn(dest);
        if (now.files.length >= 12 && now.temps.length) break;
      }
      child.kill('SIGKILL');
      await closed;
      cut = filesIn(dest);
    }
    expect(cut.files.length).toBeLessThan(all.length);
    expect(cut.temps.length).toBeGreaterThan(0);

    // diff does not count what the killed restore left behind as added.
    const d = await runCli([...configArgs(p), 'diff', cap, `${dest}/`]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).not.toMatch(/\.lafs-restore-/);
    expect(d.stdout).not.toMatch(/^\+/m);

    // Between the runs: one finished file loses its mode (metadata is applied again, no
    // download); another gets an extended attribute the backup does not give it (downloaded again).
    const plainDone = cut.files.filter((f) => !xzFiles.has(f));
    expect(plainDone.length).toBeGreaterThan(2);
    const [chmodded, tagged] = plainDone;
    chmodSync(join(dest, chmodded!), 0o600);
    execFileSync('setfattr', ['-n', 'user.stray', '-v', 'x', join(dest, tagged!)]);

    grid.resetStats();
    const again = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(withoutSummary(again.stderr)).toBe('');
    // Downloaded: what was missing, the xz files in place, and the one with the stray attribute.
    const kept = plainDone.length - 1;
    expect(grid.stats.download).toBe(all.length - kept);
    expect(filesIn(dest).temps).toEqual([]);
    expect(describeTree(dest)).toEqual(describeTree(clean));

    const same = await runCli([...configArgs(p), 'diff', cap, `${dest}/`]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toBe('');
  }, 120_000);

  it('a file in place that differs in size, mtime or owner is downloaded again; --force with nothing changed downloads only the xz files', async () => {
    const dest = join(tempDir(), 'dest');
    const first = await runCli([...configArgs(p), 'restore', cap, dest]);
    expect(first.code, first.stderr).toBe(0);
    const want = describeTree(dest);
    grid.resetStats();
    const nothing = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(grid.stats.download).toBe(xzFiles.size);

    // Same size, another mtime; same mtime, another size; same size and mtime, another owner.
    writeFileSync(join(dest, 'one', 'f4.bin'), randomBytes(20_004));
    const f5 = join(dest, 'one', 'f5.bin');
    const t5 = lstatSync(f5);
    writeFileSync(f5, randomBytes(100));
    utimesSync(f5, t5.atime, t5.mtime);
    const changed = isRoot ? 3 : 2;
    if (isRoot) chownSync(join(dest, 'one', 'f6.bin'), 4321, 4321);
    grid.resetStats();
    const r = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(grid.stats.download).toBe(xzFiles.size + changed);
    expect(describeTree(dest)).toEqual(want);
  }, 60_000);

  it('leftovers of a killed restore are removed from DEST and its subdirectories: only names of our pattern, never a directory', async () => {
    const dest = join(tempDir(), 'dest');
    const r = await runCli([...configArgs(p), 'restore', cap, dest]);
    expect(r.code, r.stderr).toBe(0);
    const ours = ['.lafs-restore-0123456789ab-0', 'two/.lafs-restore-abcdef012345-1z'];
    const notOurs = ['.lafs-restore-notours', 'one/.lafs-restore-0123456789AB-0', 'three/.lafs-restore-0123456789ab-2'];
    for (const f of [...ours, ...notOurs.slice(0, 2)]) writeFileSync(join(dest, f), 'left');
    mkdirSync(join(dest, notOurs[2]!));
    const again = await runCli([...configArgs(p), 'restore', cap, dest, '--force']);
    expect(again.code, again.stderr).toBe(0);
    for (const f of ours) expect(existsSync(join(dest, f)), f).toBe(false);
    for (const f of notOurs) expect(existsSync(join(dest, f)), f).toBe(true);
  }, 60_000);
});
