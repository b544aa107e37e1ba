/**
 * A restored file is the file that was backed up, and it carries no privilege it was not
 * given: downloads are checked against the listing's size (a gateway that answers short with
 * a consistent Content-Length), xz streams must reach their end, and a file not owned as in
 * the backup loses its setuid/setgid bits and file capabilities.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { handmade, META } from '../support/handmade.js';
import { isRoot, makeTree, tempDir } from '../support/tree.js';
import { startShortBody } from './short-body.js';

const env = useGrid();
const xz = (data: Buffer) => execFileSync('xz', ['-c', '-6'], { input: data });

describe('every restored file has the size the backup says', () => {
  const h = handmade(env);

  /** A tree of a plain file, an xz file and a small one; `short` decides which downloads come back half. */
  async function restoreThroughShort(short: (caps: Record<string, string>) => (n: number, path: string) => boolean) {
    const plain = randomBytes(300_000);
    const text = Buffer.from('a line of a log that compresses well\n'.repeat(20_000));
    const caps = { plain: await h.c.putFile(() => plain), packed: await h.c.putFile(() => xz(text)), small: await h.c.putFile(() => Buffer.from('small file '.repeat(30))) };
    const root = await h.c.mkdirImmutable([
      { name: 'plain.bin', type: 'filenode', cap: caps.plain, metadata: META },
      { name: 'packed.log', type: 'filenode', cap: caps.packed, metadata: { ...META, enc: 'xz' } },
      { name: 'small.txt', type: 'filenode', cap: caps.small, metadata: META },
    ]);
    const proxy = await startShortBody(env.url, short(caps));
    const dir = tempDir();
    const via = join(dir, 'via-short.yaml');
    // The restore's own (short) budget, made quick: a wrong-sized file is fetched again within it.
    writeFileSync(via, `destination: {url: '${proxy.url}'}\nhttp: {interactive_retry: {attempts: 2, delay: [0.05]}}\n`);
    const dest = join(dir, 'dest');
    try {
      const r = await runCli([...configArgs(h.p), '-c', via, 'restore', root, dest]);
      return { r, dest, plain, text, shortened: proxy.shortened };
    } finally {
      await proxy.close();
    }
  }

  const pathHas = (cap: string) => (path: string) => decodeURIComponent(path).includes(cap);

  it('a download answered short once (Content-Length consistent) is downloaded again, and the file comes back whole', async () => {
    const seen = new Set<string>();
    const { r, dest, plain, text, shortened } = await restoreThroughShort((caps) => (_n, path) => {
      // The first download of each of the two big files is cut in half.
      const which = [caps.plain, caps.packed].find((c) => pathHas(c)(path));
      if (!which || seen.has(which)) return false;
      seen.add(which);
      return true;
    });
    expect(r.code, r.stderr).toBe(0);
    expect(shortened).toBe(2);
    expect(readFileSync(join(dest, 'plain.bin')).equals(plain)).toBe(true);
    expect(readFileSync(join(dest, 'packed.log')).equals(text)).toBe(true);
    expect(r.stderr).toMatch(/"\/plain\.bin": the gateway sent 150000 of its 300000 bytes; downloading it again in 0\.05 s/);
    expect(r.stderr).toMatch(/"\/packed\.log": the gateway sent \d+ of its \d+ bytes; downloading it again/);
  });

  it('answered short every time: each such file is a named failure (exit 3), never half a file; the others are restored', async () => {
    const { r, dest, shortened } = await restoreThroughShort((caps) => (_n, path) => pathHas(caps.plain)(path) || pathHas(caps.packed)(path));
    expect(r.code, r.stderr).toBe(3);
    // The policy's attempts (2 retries in the test configuration): three downloads each.
    expect(shortened).toBe(6);
    expect(r.stderr).toMatch(/cannot restore "\/plain\.bin": the gateway sent 150000 of its 300000 bytes \(3 downloads\); skipped/);
    // A cut xz stream is a short download, not contents that "do not decode".
    expect(r.stderr).toMatch(/cannot restore "\/packed\.log": the gateway sent \d+ of its \d+ bytes \(3 downloads\); skipped/);
    expect(r.stderr).not.toMatch(/do not decode|internal error/);
    expect(existsSync(join(dest, 'plain.bin'))).toBe(false);
    expect(existsSync(join(dest, 'packed.log'))).toBe(false);
    expect(readFileSync(join(dest, 'small.txt'), 'utf8')).toBe('small file '.repeat(30));
    expect(readdirSync(dest)).toEqual(['small.txt']);
  });

  it('an xz stream cut short whose listing agrees (the stored object itself is cut) does not decode: a named failure, exit 3', async () => {
    const whole = xz(randomBytes(50_000));
    const cut = await h.c.putFile(() => whole.subarray(0, whole.length - 40));
    const root = await h.c.mkdirImmutable([{ name: 'cut.bin', type: 'filenode', cap: cut, metadata: { ...META, enc: 'xz' } }]);
    const dest = join(tempDir(), 'dest');
    const r = await runCli([...configArgs(h.p), 'restore', root, dest]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/cannot restore "\/cut\.bin": its contents are marked xz but do not decode/);
    expect(readdirSync(dest)).toEqual([]);
  });
});

describe('privileges follow the owner', () => {
  it.skipIf(!isRoot)('restore --no-owner as root: a user\'s setuid file and a file with capabilities come back without them (one warning); root\'s own setuid file keeps its bit', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, {});
    for (const name of ['user-suid', 'user-capped', 'root-suid']) copyFileSync('/bin/true', join(src, name));
    chownSync(join(src, 'user-suid'), 1000, 1000);
    chmodSync(join(src, 'user-suid'), 0o6755);
    chownSync(join(src, 'user-capped'), 1000, 1000);
    execFileSync('setcap', ['cap_net_raw+ep', join(src, 'user-capped')]);
    chmodSync(join(src, 'root-suid'), 0o4755);
    const q = project(dir, src, env.url);
    const made = await backup(q);
    expect(made.code, made.stderr).toBe(0);
    const getcap = (p: string) => execFileSync('getcap', [p], { encoding: 'utf8' }).trim();
    const mode = (p: string) => (lstatSync(p).mode & 0o7777).toString(8);

    const plain = join(dir, 'no-owner');
    const r = await runCli([...configArgs(q), 'restore', made.cap, plain, '--no-owner']);
    expect(r.code, r.stderr).toBe(0);
    expect(withoutSummary(r.stderr).trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/2 files restored without their setuid\/setgid bits and file capabilities, as they are not owned as in the backup \(owners are not restored: --no-owner, or not run as root\), among them "\/user-(capped|suid)"\n/);
    expect(lstatSync(join(plain, 'user-suid'))).toMatchObject({ uid: 0, gid: 0 });
    expect(mode(join(plain, 'user-suid'))).toBe('755');
    expect(getcap(join(plain, 'user-capped'))).toBe('');
    expect(mode(join(plain, 'root-suid'))).toBe('4755');

    // With owners, everything comes back as it was.
    const owned = join(dir, 'owned');
    const o = await runCli([...configArgs(q), 'restore', made.cap, owned]);
    expect(o.code, o.stderr).toBe(0);
    expect(withoutSummary(o.stderr)).toBe('');
    expect(lstatSync(join(owned, 'user-suid'))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(mode(join(owned, 'user-suid'))).toBe('6755');
    expect(getcap(join(owned, 'user-capped'))).toBe(`${join(owned, 'user-capped')} cap_net_raw=ep`);
    expect(mode(join(owned, 'root-suid'))).toBe('4755');
  });
});
