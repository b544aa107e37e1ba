/**
 * The tool's own state inside the source — queue, entry cache (with -wal, -shm, lock), result
 * file, log file — is left out of the backup, and the run says so (at info level): backing it
 * up would make every run incomplete (the cache's -wal changes while it is read) and put caps
 * into the backup.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBack } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

describe("the tool's own files inside the source", () => {
  it('queue, cache, result file and log inside source.path are left out, and said to be: every run complete (exit 0)', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    makeTree(src, { docs: { a: 'a'.repeat(100) }, state: { keep: 'mine' } });
    const config = join(dir, 'backup.yaml');
    writeFileSync(
      config,
      `source: {path: '${src}', queue: {path: '${src}/state/queue.txt'}, entry_cache: {path: '${src}/state/cache.db'}}\n` +
        `destination: {url: '${env.url}', result: {append_to_file: '${src}/results.txt'}}\n` +
        `logging: {file: '${src}/state/log.txt', level: info}\nhttp: {retry: {attempts: 2, delay: [0.05]}}\n`,
    );
    // Three nights: the state files exist from the second on (a -wal, a lock, the log).
    const caps: string[] = [];
    for (let night = 0; night < 3; night++) {
      const r = await runCli(['-c', config, 'backup']);
      expect(r.code, `${r.stderr}${night ? readFileSync(join(src, 'state', 'log.txt'), 'utf8') : ''}`).toBe(0);
      caps.push(r.stdout.trim());
    }
    const back = await readBack(env.url, caps[2]!);
    expect([...back.keys()].sort()).toEqual(['docs', 'docs/a', 'state', 'state/keep']);
    for (const cap of caps.slice(0, 2)) expect([...(await readBack(env.url, cap)).keys()].sort()).toEqual([...back.keys()].sort());
    const log = readFileSync(join(src, 'state', 'log.txt'), 'utf8');
    expect(log).toMatch(/left lafs-backup's own files out of the backup: .*"state\/cache\.db".*"state\/cache\.db-wal"/);
    expect(log).toMatch(/left lafs-backup's own files out of the backup: .*"results\.txt"/);
  });
});
