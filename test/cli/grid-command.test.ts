/** `lafs-backup grid` as a user runs it, answered by curl; `--help` lists the commands. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { runCli, spawnCli, waitForLine } from '../support/cli.js';
import { makeTree } from '../support/tree.js';

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

  it('--dir keeps everything across a restart: a backup made before it restores after it, leases and the result dir too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-grid-'));
    const start = async () => {
      const child = spawnCli(['grid', '--port', '0', '--dir', join(dir, 'store')]);
      const [url] = await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+\/uri/);
      return { child, url: url! };
    };
    const stop = async (child: ReturnType<typeof spawnCli>) => {
      child.kill('SIGTERM');
      await new Promise((ok) => child.on('close', ok));
    };
    makeTree(join(dir, 'src'), { 'a.txt': 'a'.repeat(3000), deep: { nested: { 'b.bin': randomBytes(300_000) } }, link: { symlink: 'a.txt' } });
    let { child, url } = await start();
    const mutable = execFileSync('curl', ['-sS', '-X', 'POST', `${url}?t=mkdir`], { encoding: 'utf8' });
    const p = project(dir, join(dir, 'src'), url, `destination: {result: {append_to_lafs_dir: '${mutable}'}}\n`);
    const made = await backup(p);
    expect(made.code, made.stderr).toBe(0);
    const checked = await runCli([...configArgs(p), 'check']);
    expect(checked.code, checked.stdout).toBe(0);
    const leases = (u: string) => (JSON.parse(execFileSync('curl', ['-sS', u.replace(/\/uri$/, '/__grid/state')], { encoding: 'utf8' })) as { objects: { si: string; leaseRenewals: number }[] }).objects.map((o) => `${o.si}:${o.leaseRenewals}`).sort();
    const before = leases(url);
    expect(before.some((l) => l.endsWith(':1'))).toBe(true);
    await stop(child);

    ({ child, url } = await start());
    const again = join(dir, 'again.yaml');
    writeFileSync(again, `destination: {url: '${url}'}\n`);
    p.extra.push(again);
    const r = await runCli([...configArgs(p), 'restore', made.cap, join(dir, 'restored')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'restored', 'deep', 'nested', 'b.bin')).equals(readFileSync(join(dir, 'src', 'deep', 'nested', 'b.bin')))).toBe(true);
    expect(readlinkSync(join(dir, 'restored', 'link'))).toBe('a.txt');
    // The mutable directory and its link survived too.
    const listing = JSON.parse(execFileSync('curl', ['-sS', `${url}/${mutable}?t=json`], { encoding: 'utf8' })) as [string, { children: Record<string, unknown> }];
    expect(Object.keys(listing[1].children)).toEqual(['src']);
    expect(leases(url)).toEqual(before);
    await stop(child);
  });

  it('a blob removed from --dir: check says unhealthy, a download fails with 410, the grid keeps running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-grid-'));
    const child = spawnCli(['grid', '--port', '0', '--dir', join(dir, 'store')]);
    const [url] = await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+\/uri/);
    const file = join(dir, 'f.bin');
    writeFileSync(file, randomBytes(5000));
    const cap = execFileSync('curl', ['-sS', '-T', file, url!], { encoding: 'utf8' });
    await new Promise((ok) => setTimeout(ok, 300));
    for (const sub of readdirSync(join(dir, 'store', 'blobs'))) rmSync(join(dir, 'store', 'blobs', sub), { recursive: true });
    const status = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${url}/${cap}`], { encoding: 'utf8' });
    expect(status).toBe('410');
    const check = JSON.parse(execFileSync('curl', ['-sS', '-X', 'POST', `${url}/${cap}?t=check&output=JSON`], { encoding: 'utf8' })) as { results: { healthy: boolean; 'count-shares-good': number } };
    expect(check.results.healthy).toBe(false);
    expect(check.results['count-shares-good']).toBe(0);
    // Still answering; and the same bytes uploaded again bring the object back.
    expect(execFileSync('curl', ['-sS', '-T', file, url!], { encoding: 'utf8' })).toBe(cap);
    expect(execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${url}/${cap}`], { encoding: 'utf8' })).toBe('200');
    child.kill('SIGTERM');
    await new Promise((ok) => child.on('close', ok));
  });

  it('--delay-ms answers each request no sooner than that (a slow gateway for benchmarks); a bad value is a usage error', async () => {
    const child = spawnCli(['grid', '--port', '0', '--delay-ms', '300']);
    try {
      const [url] = await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+\/uri/);
      const timed = execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '-T', '-', url!], { input: Buffer.alloc(5000, 'd'), encoding: 'utf8' });
      const [status, seconds] = timed.split(' ');
      expect(status).toBe('200');
      expect(Number(seconds)).toBeGreaterThanOrEqual(0.3);
    } finally {
      child.kill('SIGTERM');
      await new Promise((ok) => child.on('close', ok));
    }
    for (const bad of ['-5', 'soon', '600000']) {
      const r = await runCli(['grid', '--port', '0', '--delay-ms', bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^lafs-backup: grid: --delay-ms must be a number of milliseconds from 0 to 60000 \(got [^)]+\)\n$/);
    }
  });

  it('a port in use, a port out of range, a --dir that is a file: one line each with the cause, exit 2 (never "internal error")', async () => {
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'lb-grid-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    writeFileSync(join(dir, 'state.json'), '{ not json');
    try {
      const cases: [string[], string][] = [
        [['--port', String(port)], `grid: cannot listen on 127.0.0.1:${port}: the address is in use (a gateway or another grid listens there?); choose another --port, or --port 0 for a free one`],
        [['--port', '99999'], 'grid: --port must be a whole number from 0 to 65535 (got 99999)'],
        [['--port', '-1'], 'grid: --port must be a whole number from 0 to 65535 (got -1)'],
        [['--port', '0', '--dir', file], `grid: cannot keep the grid in ${file}: not a directory (ENOTDIR)`],
        [['--port', '0', '--dir', dir], `grid: cannot keep the grid in ${dir}: its state.json does not parse (is it a grid directory?)`],
        [['--port', '0', '--host', '192.0.2.1'], 'grid: cannot listen on 192.0.2.1:0: that address is not one of this machine'],
      ];
      for (const [args, line] of cases) {
        const r = await runCli(['grid', ...args], { timeoutMs: 10_000 });
        expect(r.stderr, args.join(' ')).toBe(`lafs-backup: ${line}\n`);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stdout).toBe('');
      }
    } finally {
      busy.close();
    }
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
