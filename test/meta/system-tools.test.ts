/**
 * ACLs, capabilities and user xattrs set with the system tools (setfacl, setcap, setfattr) end
 * up in the queue line and the edge metadata exactly as getfacl -n, getcap -n and getfattr
 * report them; and what our encoders write, the system tools read back as the same values.
 */
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { copyFileSync, cpSync, existsSync, lutimesSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { textToAcls } from '../../src/meta/acl.js';
import { encodeCaps, textToCaps } from '../../src/meta/capability.js';
import { ACCESS_ACL, CAPABILITY, DEFAULT_ACL } from '../../src/meta/read.js';
import { setXattr } from '../../src/meta/xattr.js';
import { available } from '../../src/native.js';
import { parseLine } from '../../src/scan/queue-codec.js';
import { backup, project, readBack, type Project } from '../support/backup.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

/** getfacl -n, as our abbreviated text ('' when it only mirrors the mode bits). */
function getfacl(path: string): string {
  const lines = sh('getfacl', '-n', '-p', '-E', path).split('\n').filter((l) => l && !l.startsWith('#'));
  const text = lines.map((l) => l.replace(/^default:/, 'd:').replace(/^user:/, 'u:').replace(/^group:/, 'g:').replace(/^mask:/, 'm:').replace(/^other:/, 'o:').replace(/^d:user:/, 'd:u:').replace(/^d:group:/, 'd:g:').replace(/^d:mask:/, 'd:m:').replace(/^d:other:/, 'd:o:'));
  const access = text.filter((l) => !l.startsWith('d:'));
  const minimal = access.length === 3 && access.every((l) => /^[ugo]::/.test(l));
  return (minimal ? text.filter((l) => l.startsWith('d:')) : text).join(',');
}

/** getcap -n, without the path. */
function getcap(path: string): string {
  return sh('getcap', '-n', path).trim().slice(path.length + 1);
}

/** getfattr of the user namespace, as {name: base64}. */
function getfattr(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of sh('getfattr', '--absolute-names', '-d', '-e', 'base64', '-m', '^user\\.', path).split('\n')) {
    const m = /^(user\.[^=]+)=0s(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const CAP_CASES: Record<string, string> = {
  'raw': 'cap_net_raw+ep',
  'inh': 'cap_sys_time+i',
  'mixed': 'cap_chown,cap_kill+p cap_net_admin+i',
  'high': 'cap_perfmon,cap_bpf+ep',
  'all': '=ep',
  'almost-all': '=ep cap_sys_admin-ep',
};

describe('extended metadata against the system tools', () => {
  let p: Project;
  let queue: Map<string, ReturnType<typeof parseLine>>;
  beforeAll(async () => {
    expect(available(), 'the native addon must be built (npm run setup)').toBe(true);
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { plain: 'p', 'acl.txt': 'a', dir: { inside: 'i' }, both: {}, 'x.txt': 'x', big: 'b', 'link-target': 't' });
    symlinkSync('link-target', join(src, 'link'));
    sh('setfacl', '-m', 'u:1000:rwx,g:50:r--,u:1234:r-x', join(src, 'acl.txt'));
    sh('setfacl', '-d', '-m', 'u::rwx,g::r-x,o::---,u:1000:rwx', join(src, 'dir'));
    sh('setfacl', '-m', 'g:7:rwx', join(src, 'both'));
    sh('setfacl', '-d', '-m', 'o::r--', join(src, 'both'));
    for (const [name, text] of Object.entries(CAP_CASES)) {
      copyFileSync('/bin/true', join(src, `cap-${name}`));
      sh('setcap', text, join(src, `cap-${name}`));
    }
    copyFileSync('/bin/true', join(src, 'cap-v3'));
    sh('setcap', '-n', '1000', 'cap_net_raw+ep', join(src, 'cap-v3'));
    sh('setfattr', '-n', 'user.comment', '-v', 'hello world', join(src, 'x.txt'));
    sh('setfattr', '-n', 'user.bin', '-v', '0x00ff10', join(src, 'x.txt'));
    sh('setfattr', '-n', 'user.dirnote', '-v', 'on a directory', join(src, 'dir'));
    // ext4 keeps about a block of xattrs per inode: 'big' gets 3 KiB (the limit is tested below).
    sh('setfattr', '-n', 'user.huge', '-v', `0x${'ab'.repeat(1500)}`, join(src, 'big'));
    sh('setfattr', '-n', 'user.huge2', '-v', `0x${'cd'.repeat(1500)}`, join(src, 'big'));
    // Copies are fresh: set them an hour back, as old files are (fresh ones are never cached).
    const old = new Date(Date.now() - 3600_000);
    for (const name of readdirSync(src)) lutimesSync(join(src, name), old, old);
    p = project(dir, src, env.url);
    const r = await backup(p, ['--queue-only']);
    expect(withoutSummary(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    queue = new Map();
    for (const line of readFileSync(p.queue, 'utf8').split('\n')) {
      const e = parseLine(line);
      if (e) queue.set(e.path.toString(), e);
    }
  });

  it('the queue line carries the ACLs getfacl -n reports (minimal ACLs left out)', () => {
    for (const name of ['acl.txt', 'dir', 'both', 'plain', 'dir/inside']) {
      expect(queue.get(name)!.acls ?? '', name).toBe(getfacl(join(p.source, name)));
    }
    expect(queue.get('acl.txt')!.acls).toContain('u:1234:r-x');
    expect(queue.get('dir')!.acls).toMatch(/^d:/);
  });

  it('the queue line carries the capabilities getcap -n reports (spaces as ;)', () => {
    for (const name of [...Object.keys(CAP_CASES), 'v3']) {
      expect(queue.get(`cap-${name}`)!.caps!.replace(/;/g, ' '), name).toBe(getcap(join(p.source, `cap-${name}`)));
    }
    expect(queue.get('plain')!.caps).toBeUndefined();
    expect(queue.get('link')!.caps).toBeUndefined();
  });

  it('the edge metadata carries caps, acls and user xattrs exactly', async () => {
    const r = await backup(p, ['--reuse-queue']);
    expect(r.code).toBe(0);
    const back = await readBack(env.url, r.cap);
    for (const name of ['acl.txt', 'dir', 'both']) expect(back.get(name)!.metadata.acls, name).toBe(getfacl(join(p.source, name)));
    expect((back.get('cap-mixed')!.metadata.caps as string).replace(/;/g, ' ')).toBe(getcap(join(p.source, 'cap-mixed')));
    expect(back.get('x.txt')!.metadata.xattrs).toEqual(getfattr(join(p.source, 'x.txt')));
    expect(back.get('dir')!.metadata.xattrs).toEqual(getfattr(join(p.source, 'dir')));
    expect(back.get('big')!.metadata.xattrs).toEqual(getfattr(join(p.source, 'big')));
    expect(Object.keys(back.get('x.txt')!.metadata)).toEqual(['uid', 'gid', 'mode', 'mtime', 'xattrs']);
  });

  it('user xattrs over the size limit are left out with a warning naming the path', async () => {
    const { readUserXattrs } = await import('../../src/meta/read.js');
    const { lstatSync } = await import('node:fs');
    const { rawLogLines } = await import('../setup.js');
    const big = join(p.source, 'big');
    const told: string[] = [];
    expect(readUserXattrs(Buffer.from(big), lstatSync(big, { bigint: true }), 2048, (abs) => told.push(abs.toString()))).toBeNull();
    expect(told).toEqual([big]);
    expect(JSON.parse(rawLogLines.at(-1)!).msg).toBe(`the user. extended attributes of ${JSON.stringify(big)} take more than 2048 bytes; left out`);
  });

  itEmbedded('a metadata change (setfattr) re-creates directories but uploads no contents', async () => {
    await backup(p, ['-f']);
    sh('setfattr', '-n', 'user.comment', '-v', 'changed', join(p.source, 'x.txt'));
    env.grid.resetStats();
    const r = await backup(p);
    expect(env.grid.stats.put_uri).toBe(0);
    expect(env.grid.stats.mkdir_immutable).toBe(1);
    expect(Buffer.from((await readBack(env.url, r.cap)).get('x.txt')!.metadata.xattrs!['user.comment' as never] as string, 'base64').toString()).toBe('changed');
  });

  itEmbedded("an unchanged file's user xattrs come from its cache row; a changed ctime reads them again", async () => {
    const comment = async (cap: string) => Buffer.from((await readBack(env.url, cap)).get('x.txt')!.metadata.xattrs!['user.comment' as never] as string, 'base64').toString();
    const row = (db: Database.Database) => db.prepare("SELECT xattrs FROM entries WHERE kind = 0 AND substr(key, 1, 6) = x'782e74787400'").pluck().get() as string | null;
    sh('setfattr', '-n', 'user.comment', '-v', 'on disk', join(p.source, 'x.txt'));
    const first = await backup(p, ['-f']);
    let db = new Database(p.cache);
    expect(JSON.parse(row(db)!)).toEqual(getfattr(join(p.source, 'x.txt')));
    // A row from before xattrs were remembered (NULL) reads them, and learns them.
    db.prepare("UPDATE entries SET xattrs = NULL WHERE kind = 0 AND substr(key, 1, 6) = x'782e74787400'").run();
    db.prepare('DELETE FROM entries WHERE kind = 3').run();
    db.close();
    const again = await backup(p);
    expect(again.cap).toBe(first.cap);
    db = new Database(p.cache);
    expect(JSON.parse(row(db)!)).toEqual(getfattr(join(p.source, 'x.txt')));
    // Unchanged (same ctime): the row is what the edge gets — the file's xattrs are not listed.
    const planted = JSON.stringify({ 'user.comment': Buffer.from('from the row').toString('base64') });
    db.prepare("UPDATE entries SET xattrs = ? WHERE kind = 0 AND substr(key, 1, 6) = x'782e74787400'").run(planted);
    // (Without listing rows, which would answer the whole directory once its ctimes are old.)
    db.prepare('DELETE FROM entries WHERE kind = 3').run();
    db.close();
    expect(await comment((await backup(p)).cap)).toBe('from the row');
    // Any change to them moves the ctime: read again, whatever the row says.
    sh('setfattr', '-n', 'user.comment', '-v', 'set again', join(p.source, 'x.txt'));
    expect(await comment((await backup(p)).cap)).toBe('set again');
  });

  it('what our encoders write, the system tools read as the same values', () => {
    const dir = tempDir();
    for (const [name, text] of Object.entries(CAP_CASES)) {
      const f = join(dir, name);
      copyFileSync('/bin/true', f);
      setXattr(Buffer.from(f), CAPABILITY, encodeCaps(textToCaps(text)));
      const ref = join(dir, `${name}.ref`);
      copyFileSync('/bin/true', ref);
      sh('setcap', text, ref);
      expect(getcap(f), name).toBe(getcap(ref));
    }
    const v3 = join(dir, 'v3');
    copyFileSync('/bin/true', v3);
    setXattr(Buffer.from(v3), CAPABILITY, encodeCaps(textToCaps('cap_net_raw=ep [rootid=1000]')));
    expect(getcap(v3)).toBe('cap_net_raw=ep [rootid=1000]');
    const text = 'u::rw-,u:1000:rwx,u:1234:r-x,g::r--,g:50:r--,m::rwx,o::r--';
    const f = join(dir, 'acl');
    writeFileSync(f, '');
    setXattr(Buffer.from(f), ACCESS_ACL, textToAcls(text).access!);
    expect(getfacl(f)).toBe(text);
    const d = join(dir, 'd');
    mkdirSync(d);
    setXattr(Buffer.from(d), DEFAULT_ACL, textToAcls('d:u::rwx,d:u:1000:rwx,d:g::r-x,d:m::rwx,d:o::---').default!);
    expect(getfacl(d)).toBe('d:u::rwx,d:u:1000:rwx,d:g::r-x,d:m::rwx,d:o::---');
    setXattr(Buffer.from(f), 'user.k', Buffer.from([0, 1, 2, 255]));
    expect(getfattr(f)).toEqual({ 'user.k': Buffer.from([0, 1, 2, 255]).toString('base64') });
  });
});

describe('without the addon', () => {
  it('a backup that cannot keep the extended metadata asked for fails naming the fix (exit 2); with source.extended_metadata: false it goes on without', async () => {
    const dir = tempDir();
    // A copy of the program whose addon was never built.
    const copy = join(dir, 'program');
    cpSync(join(import.meta.dirname, '../../dist'), join(copy, 'dist'), { recursive: true });
    cpSync(join(import.meta.dirname, '../../config'), join(copy, 'config'), { recursive: true });
    writeFileSync(join(copy, 'package.json'), readFileSync(join(import.meta.dirname, '../../package.json')));
    symlinkSync(join(import.meta.dirname, '../../node_modules'), join(copy, 'node_modules'));
    makeTree(join(dir, 'src'), { a: 'a', b: 'b', c: { d: 'd' } });
    sh('setfacl', '-m', 'u:1000:rwx', join(dir, 'src', 'a'));
    const cli = join(copy, 'dist', 'bin', 'lafs-backup.js');
    const p = project(dir, join(dir, 'src'), env.url);
    const refused = await runCli(['-c', p.config, 'backup'], { cli });
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toMatch(
      /^lafs-backup: source\.extended_metadata: ACLs, file capabilities and xattrs cannot be backed up: the native addon is not built \(.*\); build it \("npm rebuild lafs-backup" where it is installed, "npm run build:native" in a checkout\), or set source\.extended_metadata: false to back up without them$/,
    );
    expect(refused.stdout).toBe('');
    expect(existsSync(p.queue)).toBe(false);
    writeFileSync(join(dir, 'without.yaml'), 'source: {extended_metadata: false}\n');
    const run = await runCli(['-c', p.config, '-c', join(dir, 'without.yaml'), 'backup'], { cli });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/WARN/);
    expect(run.stdout).toMatch(/^URI:DIR2-CHK:/);
    expect((await readBack(env.url, run.stdout.trim())).get('a')!.metadata.acls).toBeUndefined();
  });
});
