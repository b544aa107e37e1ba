/**
 * A command that had no stop of its own before the session gave it one: `check` interrupted
 * while its deep-check waits on the gateway ends with one line and 130 — the request is
 * cancelled, the cache and its lock closed — and records no check time for the backup it had
 * not finished checking. The gateway's answer is held by the fault proxy until the signal, so
 * the signal comes while the request is in flight (counted, not timed).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project } from '../support/backup.js';
import { spawnCli } from '../support/cli.js';
import { startFlaky } from '../support/flaky.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

describe('interrupting a command through its session', () => {
  it('check: SIGINT while the deep-check is in flight ends it with one line and 130; no check time is recorded', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { 'a.txt': 'a'.repeat(2000), sub: { 'b.txt': 'b' } });
    const p = project(dir, join(dir, 'src'), env.url);
    await backup(p);
    const flaky = await startFlaky(env.url, (_n, req) => (req.url.includes('t=stream-deep-check') ? 'hang' : 'ok'));
    try {
      const child = spawnCli([...configArgs(p), '--gateway', flaky.url.replace(/\/uri$/, ''), 'check']);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.on('close', (code, signal) => ok({ code, signal })));
      // Until the deep-check request has reached the proxy (which holds its answer).
      while (!flaky.seen.some((r) => r.url.includes('t=stream-deep-check'))) await new Promise((ok) => setTimeout(ok, 20));
      child.kill('SIGINT');
      const { code, signal } = await ended;
      expect({ code, signal }).toEqual({ code: 130, signal: null });
      expect(stderr.trim().split('\n')).toEqual(['lafs-backup: interrupted by SIGINT; what was done is kept, rerun to finish']);
      expect(cacheRows(p.cache, 'SELECT ts_check FROM backups')).toEqual([{ ts_check: null }]);
    } finally {
      await flaky.close();
    }
  });
});
