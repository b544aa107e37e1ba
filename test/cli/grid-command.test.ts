/** `lafs-backup grid` as a user runs it, answered by curl; `--help` lists the commands. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli, waitForLine } from '../support/cli.js';

describe('lafs-backup grid', () => {
  it('starts a server that `curl -T file …/uri` answers with a cap, and keeps data under --dir across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-grid-'));
    const file = join(dir, 'upload.bin');
    writeFileSync(file, Buffer.alloc(5000, 'z'));
    const start = async () => {
      const child = spawnCli(['grid', '--port', '0', '--dir', join(dir, 'store')]);
      const [url] = await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+\/uri/);
      return { child, url };
    };
    let { child, url } = await start();
    const cap = execFileSync('curl', ['-sS', '-T', file, url], { encoding: 'utf8' });
    expect(cap).toMatch(/^URI:CHK:[a-z2-7]{26}:[a-z2-7]{52}:2:4:5000$/);
    child.kill('SIGTERM');
    await new Promise((ok) => child.on('close', ok));
    ({ child, url } = await start());
    const back = execFileSync('curl', ['-sS', `${url}/${cap}`]);
    expect(back.equals(Buffer.alloc(5000, 'z'))).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise((ok) => child.on('close', ok));
    expect(code).toBe(0);
  });

  it('--help lists the commands and the exit codes; an unknown command is a usage error', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['grid', 'dump-config']) expect(help.stdout).toContain(`lafs-backup ${cmd}`);
    expect(help.stdout).toMatch(/Exit status:[\s\S]*130/);
    const bad = await runCli(['frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
