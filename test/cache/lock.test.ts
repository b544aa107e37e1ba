/** The entry cache lock: held through its refreshes, refused to a second holder, stale when its owner died. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lockCache } from '../../src/cache/lock.js';
import { tempDir } from '../support/tree.js';

describe('entry cache lock', () => {
  it('stays held through several refreshes, and a second locker is refused naming the holder', async () => {
    const db = join(tempDir(), 'cache.db');
    const release = await lockCache(db, { staleMs: 2000, updateMs: 500 });
    await new Promise((ok) => setTimeout(ok, 2600)); // > 5 refreshes, > the stale time
    await expect(lockCache(db, { staleMs: 2000, updateMs: 500 })).rejects.toThrow(new RegExp(`another lafs-backup is using the entry cache .* \\(process ${process.pid} on `));
    await release();
    expect(existsSync(`${db}.lock`)).toBe(false);
    expect(existsSync(`${db}.lock-owner`)).toBe(false);
    const again = await lockCache(db);
    await again();
  });

  it('a lock with no owner record (a run killed while taking or releasing it) is taken over once it is not brand new', async () => {
    const db = join(tempDir(), 'cache.db');
    mkdirSync(`${db}.lock`);
    // Brand new: another run may be between taking the lock and writing its record.
    await expect(lockCache(db)).rejects.toThrow(/another lafs-backup is using the entry cache/);
    const old = new Date(Date.now() - 5000);
    utimesSync(`${db}.lock`, old, old);
    const release = await lockCache(db);
    expect(JSON.parse(readFileSync(`${db}.lock-owner`, 'utf8')).pid).toBe(process.pid);
    await release();
  });

  it('the lock directory is 0700 and the owner file 0600, whatever the umask', async () => {
    const db = join(tempDir(), 'cache.db');
    const old = process.umask(0);
    try {
      const release = await lockCache(db);
      expect((statSync(`${db}.lock`).mode & 0o777).toString(8)).toBe('700');
      expect((statSync(`${db}.lock-owner`).mode & 0o777).toString(8)).toBe('600');
      await release();
    } finally {
      process.umask(old);
    }
  });

  it('a lock left by a process that is gone is taken over at once', async () => {
    const db = join(tempDir(), 'cache.db');
    const script = `import('${join(import.meta.dirname, '../../dist/cache/lock.js')}').then(async (m) => { await m.lockCache(${JSON.stringify(db)}); console.log('locked'); setInterval(() => {}, 1000); })`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((ok) => child.stdout.on('data', () => ok()));
    const pid = JSON.parse(readFileSync(`${db}.lock-owner`, 'utf8')).pid;
    expect(pid).toBe(child.pid);
    child.kill('SIGKILL');
    await new Promise((ok) => child.on('close', ok));
    const release = await lockCache(db);
    expect(JSON.parse(readFileSync(`${db}.lock-owner`, 'utf8')).pid).toBe(process.pid);
    await release();
  });
});
