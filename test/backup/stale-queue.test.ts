/**
 * A queue built earlier (by --queue-only, or by a run that was interrupted) never hides a
 * change: it is reused only when proven fresh — same filters, every directory as its walk saw
 * it — and whatever queue is uploaded, each edge describes the entry as it is now (owner and
 * mode from phase 2's stat, ACLs read again when the entry changed since the walk).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, cacheRows, project, readBack } from '../support/backup.js';
import { useGrid } from '../support/grid.js';
import { isRoot, makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

/** The queue's `rebuilt` as `backup --json` reports it, and the backup's cap. */
async function jsonBackup(p: ReturnType<typeof project>, args: string[] = []): Promise<{ rebuilt: boolean; cap: string; code: number | null; stderr: string }> {
  const r = await backup(p, ['--json', ...args]);
  if (r.code !== 0) return { rebuilt: false, cap: '', code: r.code, stderr: r.stderr };
  const j = JSON.parse(r.stdout) as { cap: string; queue: { rebuilt: boolean } };
  return { rebuilt: j.queue.rebuilt, cap: j.cap, code: r.code, stderr: r.stderr };
}

const OLD = new Date(Date.now() - 3600_000);

describe('a stale queue never hides changes', () => {
  it('files and directories added deep inside after --queue-only are backed up, even with the root mtime set back', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a', sub: { deeper: { b: 'b' } } });
    utimesSync(join(dir, 'src'), OLD, OLD);
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    writeFileSync(join(dir, 'src', 'sub', 'deeper', 'new.txt'), 'new');
    mkdirSync(join(dir, 'src', 'sub', 'newdir'));
    writeFileSync(join(dir, 'src', 'sub', 'newdir', 'x'), 'x');
    // An mtime can be set back; the check rests on ctimes.
    for (const d of ['src', 'src/sub', 'src/sub/deeper']) utimesSync(join(dir, d), OLD, OLD);
    const r = await jsonBackup(p);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rebuilt).toBe(true);
    expect([...(await readBack(env.url, r.cap)).keys()].sort()).toEqual(['a', 'sub', 'sub/deeper', 'sub/deeper/b', 'sub/deeper/new.txt', 'sub/newdir', 'sub/newdir/x']);
  });

  it('an exclusion added after the queue was built applies: the excluded file is not uploaded', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { notes: 'n', ssh: { id_ed25519: 'PRIVATE KEY', 'id_ed25519.pub': 'public' } });
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    writeFileSync(p.config, `${readFileSync(p.config, 'utf8')}filter: ['-/id_ed25519$']\n`);
    const r = await jsonBackup(p);
    expect(r.code, r.stderr).toBe(0);
    expect(r.rebuilt).toBe(true);
    expect([...(await readBack(env.url, r.cap)).keys()].sort()).toEqual(['notes', 'ssh', 'ssh/id_ed25519.pub']);
  });

  it('a fresh queue is reused (nothing walked again), and gives the same backup as a new one', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a', sub: { b: 'b', deeper: { c: 'c' } } });
    for (const d of ['src', 'src/sub', 'src/sub/deeper']) utimesSync(join(dir, d), OLD, OLD);
    const p = project(dir, join(dir, 'src'), env.url);
    // Directories changed in the last two seconds are too recent to prove anything.
    await new Promise((ok) => setTimeout(ok, 2100));
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    const reused = await jsonBackup(p);
    expect(reused.code, reused.stderr).toBe(0);
    expect(reused.rebuilt).toBe(false);
    const fresh = await jsonBackup(p, ['-f']);
    expect(fresh.cap).toBe(reused.cap);
  });

  it('chmod (and chown) after the queue was built: the edge takes mode and owner from the file as it is now, with --reuse-queue too', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { secret: 'nothing yet', other: 'o' });
    chmodSync(join(dir, 'src', 'secret'), 0o644);
    await new Promise((ok) => setTimeout(ok, 2100));
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    chmodSync(join(dir, 'src', 'secret'), 0o600);
    writeFileSync(join(dir, 'src', 'secret'), 'the secret');
    utimesSync(join(dir, 'src', 'secret'), OLD, OLD);
    if (isRoot) chownSync(join(dir, 'src', 'secret'), 1234, 4321);
    // The directory did not change: the queue is fresh and reused, the edge is still right.
    const auto = await jsonBackup(p);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.rebuilt).toBe(false);
    const reused = await jsonBackup(p, ['--reuse-queue']);
    for (const r of [auto, reused]) {
      const node = (await readBack(env.url, r.cap)).get('secret')!;
      expect(node.content!.toString()).toBe('the secret');
      expect(node.metadata.mode).toBe('100600');
      if (isRoot) expect([node.metadata.uid, node.metadata.gid]).toEqual(['1234', '4321']);
    }
  });

  it('an ACL set after the queue was built is read again for the edge (--reuse-queue)', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { shared: 'data', d: { f: 'f' } });
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    await new Promise((ok) => setTimeout(ok, 50));
    execFileSync('setfacl', ['-m', 'u:1000:rwx', join(dir, 'src', 'shared')]);
    execFileSync('setfacl', ['-m', 'd:u:1000:rx', join(dir, 'src', 'd')]);
    const r = await jsonBackup(p, ['--reuse-queue']);
    expect(r.code, r.stderr).toBe(0);
    const back = await readBack(env.url, r.cap);
    expect(back.get('shared')!.metadata.acls).toBe('u::rw-,u:1000:rwx,g::r--,m::rwx,o::r--');
    expect(String(back.get('d')!.metadata.acls)).toContain('d:u:1000:r-x');
  });

  it('a queue with a duplicated line or directory block is refused in one line naming file:line (exit 2), nothing recorded', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a', sub: { b: 'b' }, z: 'z' });
    const p = project(dir, join(dir, 'src'), env.url);
    expect((await backup(p, ['--queue-only'])).code).toBe(0);
    const good = readFileSync(p.queue, 'utf8').split('\n');
    const line = (prefix: string) => good.findIndex((l) => l.startsWith(prefix));
    const twiceLine = [...good];
    twiceLine.splice(line('a '), 0, good[line('a ')]!);
    const twiceBlock = [...good];
    twiceBlock.splice(line('sub ') + 1, 0, good[line('sub/b ')]!, good[line('sub ')]!);
    for (const [edited, re] of [
      [twiceLine, /^lafs-backup: .*queue\.txt:\d+: "a" is listed twice$/],
      [twiceBlock, /^lafs-backup: .*queue\.txt:\d+: "sub" is listed twice$/],
    ] as const) {
      writeFileSync(p.queue, edited.join('\n'));
      const r = await backup(p, ['--reuse-queue']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toMatch(re);
      expect(existsSync(p.cache) ? cacheRows(p.cache, 'SELECT count(*) AS n FROM backups')[0]!.n : 0).toBe(0);
    }
  });
});
