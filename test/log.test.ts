/** No cap ever appears in a log line, at any level; the log file is ours, never a planted one. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { configureLogging, log } from '../src/log.js';
import { TahoeClient } from '../src/tahoe/client.js';
import { redact } from '../src/core/redact.js';
import { startFlaky } from './support/flaky.js';
import { runCli } from './support/cli.js';
import { useGrid } from './support/grid.js';
import { isRoot, tempDir } from './support/tree.js';
import { pauseAudit, rawLogLines } from './setup.js';

const env = useGrid();

describe('logging', () => {
  it('a verbose operation (debug requests, retries, noise level) logs no URI: string', async () => {
    const written: string[] = [];
    configureLogging({ level: 'noise', sink: (l) => written.push(l) });
    const flaky = await startFlaky(env.url, (n) => (n % 3 === 0 ? '503' : 'ok'));
    const c = new TahoeClient({ url: flaky.url, debugRequests: true, retry: { attempts: 2, delays: [0] } });
    const file = await c.putFile(() => Readable.from([randomBytes(4000)]));
    const dir = await c.mkdirImmutable([{ name: 'f', type: 'filenode', cap: file, metadata: { mode: '100644' } }]);
    const mutable = await c.mkdirMutable();
    await c.link(mutable, 'b', dir);
    for await (const u of c.deepCheck(dir, { addLease: true })) void u;
    await c.close();
    await flaky.close();
    expect(written.length).toBeGreaterThan(5);
    expect(written.some((l) => l.includes('retrying'))).toBe(true);
    expect(written.join('')).not.toMatch(/URI:/);
    expect(rawLogLines.join('')).not.toMatch(/URI:[A-Z]/);
  });

  it('scrubs a cap that a message or field carries anyway, leaving its stable redacted tag', () => {
    const written: string[] = [];
    configureLogging({ level: 'noise', sink: (l) => written.push(l) });
    pauseAudit(true);
    const cap = 'URI:CHK:un76sm4rsegnakzy7m4jeeyova:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:2:4:1024';
    log.warn({ detail: `see ${cap}` }, `oops ${cap}`);
    configureLogging({ format: 'json' });
    log.error({ cap }, 'json line');
    configureLogging({ format: 'text' });
    pauseAudit(false);
    expect(written.join('')).not.toContain('URI:');
    expect(written[0]).toContain(redact(cap));
    expect(written[1]).toContain(redact(cap));
    expect(JSON.parse(written[1]!)).toMatchObject({ msg: 'json line', cap: redact(cap) });
  });
});

describe('logging.file', () => {
  /** dump-config with `logging.file: PATH`: it opens the log file as every command does. */
  const withLogFile = (dir: string, path: string) => {
    const config = join(dir, 'log.yaml');
    writeFileSync(config, `logging: {file: '${path}', level: debug}\n`);
    return runCli(['-c', config, 'dump-config'], { timeoutMs: 10_000 });
  };

  it("a symlink, a FIFO or another user's file at the path is refused: one exit-2 line naming key and path, the file untouched", async () => {
    const dir = tempDir();
    const victim = join(dir, 'precious');
    writeFileSync(victim, 'precious\n');
    chmodSync(victim, 0o644);
    const link = join(dir, 'planted.log');
    symlinkSync(victim, link);
    const fifo = join(dir, 'fifo.log');
    execFileSync('mkfifo', [fifo]);
    const cases: [string, string][] = [
      [link, 'it is a symbolic link (not followed)'],
      [fifo, 'it is not a regular file (a FIFO)'],
      [dir, 'is a directory (EISDIR)'],
    ];
    if (isRoot) {
      const theirs = join(dir, 'theirs.log');
      writeFileSync(theirs, 'theirs\n');
      chmodSync(theirs, 0o666);
      chownSync(theirs, 65534, 65534);
      cases.push([theirs, 'it belongs to uid 65534, not to this user (uid 0)']);
    }
    for (const [path, why] of cases) {
      const r = await withLogFile(dir, path);
      expect(r.code, path).toBe(2);
      expect(r.stderr, path).toBe(`lafs-backup: logging.file: cannot open ${path}: ${why}\n`);
    }
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    if (isRoot) expect(statSync(join(dir, 'theirs.log')).mode & 0o777).toBe(0o666);
  });

  it('a log file it creates is 0600; an existing one of ours is appended to and keeps its mode', async () => {
    const dir = tempDir();
    const fresh = join(dir, 'new.log');
    expect((await withLogFile(dir, fresh)).code).toBe(0);
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    const old = join(dir, 'old.log');
    writeFileSync(old, 'earlier line\n');
    chmodSync(old, 0o640);
    expect((await withLogFile(dir, old)).code).toBe(0);
    expect(statSync(old).mode & 0o777).toBe(0o640);
    expect(readFileSync(old, 'utf8')).toMatch(/^earlier line\n/);
  });
});
