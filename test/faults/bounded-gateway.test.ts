/**
 * Issue 25 against the real CLI: a gateway that trickles, answers without end, is down at the
 * start, asks to be retried later, breaks downloads or HTTP framing — and a run under
 * `ulimit -v` / `ulimit -n` (in a child shell). Every case ends, in bounded memory, with one
 * line, through the fault proxy in front of the embedded grid (or LAFS_TEST_GATEWAY).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startGrid } from '../../src/grid/server.js';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { CLI, runCli, spawnCli, type CliResult } from '../support/cli.js';
import { startFlaky, type Fault, type FlakyOptions, type RequestInfo } from '../support/flaky.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { watchPeak } from '../support/peak.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
/** Quick budgets, so that each case ends in a second or two. */
const QUICK = 'http: {timeout: 0.5, retry: {attempts: 1, delay: [0.05]}, interactive_retry: {attempts: 1, delay: [0.05]}}\noperation: {timeouts: {updates: [1]}}\n';

let p: Project;
let cap: string;
let big: Record<string, Buffer>;
beforeAll(async () => {
  const dir = tempDir();
  big = { 'a.bin': randomBytes(3_000_000), 'b.bin': randomBytes(1_200_000) };
  makeTree(join(dir, 'src'), { big, small: { 'x.txt': 'x'.repeat(3000), 'y.txt': 'y'.repeat(200) } });
  p = project(dir, join(dir, 'src'), env.url, 'destination: {encoding: {xz: {enabled: false}}}\n');
  const r = await backup(p);
  expect(r.code, r.stderr).toBe(0);
  cap = r.cap;
});

/** `p` with its gateway behind a fault proxy (and more YAML); the proxy is returned too. */
async function via(plan: (n: number, req: RequestInfo) => Fault, yaml = QUICK, opts: FlakyOptions = {}) {
  const flaky = await startFlaky(env.url, plan, opts);
  const file = join(p.dir, `via-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `destination: {url: '${flaky.url}'}\n${yaml}`);
  return { flaky, args: [...configArgs(p), '-c', file] };
}

const lastLine = (r: CliResult) => r.stderr.trim().split('\n').pop()!;

/** Runs the CLI under `bash -c 'ulimit …; exec node CLI args'`. */
function underUlimit(limit: string, args: string[]): Promise<CliResult> {
  const child = spawn('bash', ['-c', `ulimit ${limit} && exec "$0" "$@"`, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((ok) => child.on('close', (code, signal) => (clearTimeout(timer), ok({ code, signal, stdout, stderr }))));
}

describe('a gateway that trickles its answers (headers, then a byte every 100 ms)', () => {
  it('ls, check and backup end at their deadlines with one line, not when the trickle ends', async () => {
    const opts = { trickleMs: 100 };
    const ls = await via(() => 'trickle', QUICK, opts);
    const r = await runCli([...ls.args, 'ls', cap], { timeoutMs: 30_000 });
    await ls.flaky.close();
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r)).toMatch(/^lafs-backup: GET \?t=json of cap#[0-9a-f]{10}: the gateway did not complete its answer within 0\.5 s \(http\.timeout\)$/);

    const check = await via(() => 'trickle', QUICK, opts);
    const c = await runCli([...check.args, 'check', cap], { timeoutMs: 30_000 });
    await check.flaky.close();
    expect(c.code, c.stderr).toBe(4);
    expect(c.stdout.trim()).toMatch(/: check failed: POST \?t=stream-deep-check of cap#[0-9a-f]{10}: the stream was cut off: the gateway did not complete its answer within 0\.5 s \(http\.timeout\)$/);

    // The start probe is answered; the answers to uploads trickle.
    const up = await startFlaky(env.url, (_n, req) => (req.method === 'PUT' ? 'trickle' : 'ok'), opts);
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: randomBytes(5000) });
    const b = await backup(project(dir, join(dir, 'src'), up.url, QUICK), [], { timeoutMs: 30_000 });
    await up.close();
    expect(b.code, b.stderr).toBe(1);
    expect(lastLine(b)).toBe('lafs-backup: PUT /uri (upload): the gateway did not answer within 1 s of the end of the upload (operation.timeouts.updates)');
  });
});

describe('an answer that never ends', () => {
  it('a backup against an endless answer to its PUT stays under 300 MB peak RSS and exits 1 with one line', async () => {
    const flaky = await startFlaky(env.url, (_n, req) => (req.method === 'PUT' ? 'endless-body' : 'ok'));
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: randomBytes(5000), g: randomBytes(400_000) });
    const q = project(dir, join(dir, 'src'), flaky.url, QUICK);
    const child = spawnCli([...configArgs(q), 'backup']);
    child.stdin!.end();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.resume();
    // The child's peak RSS (VmHWM), polled; past the limit it is killed at once (the test fails).
    const peak = watchPeak(child, 20, { kib: 300 * 1024, then: () => child.kill('SIGKILL') });
    const code = await new Promise<number | null>((ok) => child.on('close', ok));
    const peakKiB = peak.stop() * 1024;
    await flaky.close();
    console.log(`endless PUT answer: peak RSS ${(peakKiB / 1024).toFixed(0)} MiB`);
    expect(peakKiB).toBeLessThan(300 * 1024);
    expect(code, stderr).toBe(1);
    expect(stderr.trim().split('\n').pop()).toBe("lafs-backup: PUT /uri (upload): the gateway's answer is longer than a cap can be (more than 4 KiB): not an answer of a Tahoe-LAFS gateway");
  });
});

describe('a gateway that is down: the short budget for commands someone waits for', () => {
  it('ls, restore, diff and check: one line naming the URL (its password hidden) within seconds, the long budget at its defaults', async () => {
    const dir = tempDir();
    const down = join(dir, 'down.yaml');
    writeFileSync(down, "destination: {url: 'http://backup:s3cret@127.0.0.1:9/uri'}\nhttp: {retry: {attempts: 4, delay: [10, 60, 600]}}\n");
    const args = ['-c', p.config, '-c', down];
    const started = Date.now();
    const [ls, restore, diff, check] = await Promise.all([
      runCli([...args, 'ls', cap], { timeoutMs: 120_000 }),
      runCli([...args, 'restore', cap, join(dir, 'dest')], { timeoutMs: 120_000 }),
      runCli([...args, 'diff', cap, p.source], { timeoutMs: 120_000 }),
      runCli([...args, 'check', cap], { timeoutMs: 120_000 }),
    ]);
    expect(Date.now() - started).toBeLessThan(30_000);
    for (const r of [ls, restore, diff, check]) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).not.toContain('s3cret');
      // Two waits (1 s, 3 s), each a WARN naming the failure and the next try.
      expect(r.stderr.match(/ WARN .*; retrying in \d s, at /g)).toHaveLength(2);
    }
    for (const r of [ls, restore, diff]) {
      expect(lastLine(r)).toMatch(/^lafs-backup: GET \?t=json of cap#[0-9a-f]{10}: cannot reach the gateway at http:\/\/\*\*\*@127\.0\.0\.1:9\/uri \(ECONNREFUSED\)$/);
    }
    expect(check.stdout + check.stderr).toMatch(/cannot reach the gateway at http:\/\/\*\*\*@127\.0\.0\.1:9\/uri \(ECONNREFUSED\)/);
  });

  itEmbedded('the start probe warns when the gateway has no storage server connected', async () => {
    const grid = await startGrid();
    try {
      for (let i = 0; i < 4; i++) grid.setServer(i, false);
      const dir = tempDir();
      makeTree(join(dir, 'src'), { f: 'f'.repeat(100) });
      const r = await backup(project(dir, join(dir, 'src'), grid.url, QUICK));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(` WARN the gateway at ${grid.url} is connected to none of its 4 storage servers: uploads will fail until some reconnect`);
    } finally {
      await grid.stop();
    }
  });
});

describe('what a gateway asks to be retried, and broken answers', () => {
  it('a backup whose uploads get 429 with Retry-After: waits as asked, completes with the same root cap', async () => {
    let puts = 0;
    const flaky = await startFlaky(env.url, (_n, req) => (req.method === 'PUT' && ++puts <= 2 ? '429' : 'ok'), { retryAfter: '1' });
    // A new cache: every file is uploaded again, and comes to the same root cap.
    const fresh = project(tempDir(), p.source, flaky.url, 'destination: {encoding: {xz: {enabled: false}}}\nhttp: {retry: {attempts: 2, delay: [0.02, 5]}}\noperation: {concurrency: 1}\n');
    const r = await backup(fresh);
    await flaky.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.cap).toBe(cap);
    expect(r.stderr).toMatch(/ WARN PUT \/uri \(upload\): gateway answered 429: Too Many Requests; retrying in 1 s \(the gateway asked for 1 s\), at /);
  });

  it('a restore whose downloads are each cut in the middle: resumed with Range requests, every file whole', async () => {
    const seen = new Set<string>();
    const { flaky, args } = await via((_n, req) => {
      if (req.method !== 'GET' || req.url.includes('?t=') || seen.has(req.url)) return 'ok';
      seen.add(req.url);
      return 'reset-mid-download';
    }, 'http: {interactive_retry: {attempts: 2, delay: [0.05]}}\n');
    const dest = join(tempDir(), 'dest');
    const r = await runCli([...args, 'restore', cap, dest]);
    await flaky.close();
    expect(r.code, r.stderr).toBe(0);
    for (const [name, data] of Object.entries(big)) expect(readFileSync(join(dest, 'big', name)).equals(data), name).toBe(true);
    expect(readFileSync(join(dest, 'small', 'x.txt'), 'utf8')).toBe('x'.repeat(3000));
    expect(flaky.seen.filter((s) => s.range).map((s) => s.range)).toEqual(expect.arrayContaining(['bytes=1500000-', 'bytes=600000-']));
  });

  it('bad chunked framing: retried (ls lists); beyond the budget one line, never "internal error"', async () => {
    const once = await via((n) => (n === 0 ? 'bad-chunking' : 'ok'), 'http: {interactive_retry: {attempts: 1, delay: [0.05]}}\n');
    const ok = await runCli([...once.args, 'ls', cap]);
    await once.flaky.close();
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim().split('\n').map((l) => l.split(/\s+/).pop())).toEqual(['big/', 'small/']);
    const always = await via(() => 'bad-chunking');
    // A subdirectory: the root's listing is kept in the entry cache since the ls above.
    const r = await runCli([...always.args, 'ls', cap, 'small']);
    await always.flaky.close();
    expect(r.code).toBe(1);
    expect(lastLine(r)).toMatch(/^lafs-backup: GET \?t=json of cap#[0-9a-f]{10}: the answer of the gateway at http:\/\/127\.0\.0\.1:\d+\/uri is not valid HTTP \(Invalid character in chunk size\)$/);
  });
});

describe('resource limits are the run\'s, named in one line', () => {
  it('ulimit -v 8 GB: backup and ls work (Node runs again without the wasm trap handler)', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { f: randomBytes(5000), d: { g: 'g'.repeat(100) } });
    const q = project(dir, join(dir, 'src'), env.url);
    const b = await underUlimit('-v 8000000', [...configArgs(q), 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const l = await underUlimit('-v 8000000', [...configArgs(q), 'ls', '-R', b.stdout.trim()]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/ d\/g\n/);
  });

  it('too few descriptors to connect (ulimit -n): EMFILE is one line naming the limit, never "internal error"', async () => {
    // Node needs some descriptors of its own to start; the first limits that let it start
    // leave none for the connection.
    const named: number[] = [];
    const early: number[] = [];
    // No entry cache: its store of listings would answer ls without a connection.
    const noCache = join(p.dir, 'no-cache.yaml');
    writeFileSync(noCache, `destination: {url: '${env.url}'}\n`);
    for (let n = 17; n <= 40 && named.length < 2; n++) {
      const r = await underUlimit(`-n ${n}`, ['-c', noCache, 'ls', cap]);
      if (r.code === 0) break;
      expect(r.stderr).not.toMatch(/internal error/);
      // Out of descriptors before any step could name what it was doing (at the edge, whether
      // yargs' strings or libuv's reserve descriptor comes first is a race): the limit's own
      // line, exit 1, never "internal error".
      if (/^lafs-backup: lafs-backup could not go on: too many open files \(EMFILE\)/.test(lastLine(r))) {
        expect(lastLine(r)).toMatch(/ulimit -n\); raise the limit and run again$/);
        expect(r.code).toBe(1);
        early.push(n);
        continue;
      }
      if (/EMFILE/.test(r.stderr) && /^lafs-backup: /.test(lastLine(r))) {
        expect(lastLine(r)).toBe(`lafs-backup: GET ?t=json of ${/cap#[0-9a-f]{10}/.exec(lastLine(r))![0]}: cannot open a connection to the gateway: this process has too many open files (EMFILE; its limit, ulimit -n, is ${n}): raise it, or lower operation.concurrency`);
        expect(r.code).toBe(1);
        named.push(n);
      }
    }
    expect(named.length + early.length).toBeGreaterThan(0);
  });
});
