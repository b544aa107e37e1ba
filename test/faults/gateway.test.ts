/**
 * Gateway faults, through a fault-injecting proxy in front of the embedded grid: 5xx answers,
 * connections reset before, during and after the request body, a gateway that stops
 * answering, truncated deep-check streams.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startGrid } from '../../src/grid/server.js';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, cacheRows, configArgs, project, readBack, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { startFlaky, type Fault, type Flaky } from '../support/flaky.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir, type Spec } from '../support/tree.js';

const env = useGrid();
const FAST = 'http: {retry: {attempts: 3, delay: [0.02]}, timeout: 0.5}\noperation: {timeouts: {updates: [1]}}\n';

function tree(root: string): void {
  const spec: Spec = {};
  for (let d = 0; d < 3; d++) {
    const dir: Spec = {};
    for (let f = 0; f < 8; f++) dir[`f${f}.bin`] = randomBytes(20_000 + f * 1000);
    spec[`d${d}`] = dir;
  }
  makeTree(root, spec);
}

/** A project whose gateway is `url`, with quick retries and time limits (and `more` YAML over them). */
function via(p: Project, url: string, more?: string): Project {
  const files = [`destination: {url: '${url}'}\n${FAST}`, ...(more ? [more] : [])].map((text) => {
    const file = join(p.dir, `via-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return file;
  });
  return { ...p, extra: [...p.extra, ...files] };
}

/** A deep-check of a real gateway may take longer than FAST's deadline of 0.5 s for the whole answer. */
const ROOMY = 'http: {timeout: 30}\n';

describe('gateway faults', () => {
  let clean: string;
  let source: string;
  beforeAll(async () => {
    const dir = tempDir();
    source = join(dir, 'src');
    tree(source);
    clean = (await backup(project(dir, source, env.url))).cap;
  });

  it('faults within the retry budget: the backup completes with the same root cap as a clean run', async () => {
    const kinds: Fault[] = ['503', 'reset', 'reset-mid-request', 'reset-mid-response', 'hang', '500'];
    let k = 0;
    // Every other request of each method fails, cycling through the kinds. With concurrency 1
    // the file stage sends one PUT at a time and the directory stage one POST at a time, so no
    // operation fails twice in a row (its retry is the next request of its method).
    const seen: Record<string, number> = {};
    const flaky = await startFlaky(env.url, (_n, req) => ((seen[req.method] = (seen[req.method] ?? 0) + 1) % 2 === 1 ? kinds[k++ % kinds.length]! : 'ok'));
    const dir = tempDir();
    const p = via(project(dir, source, env.url), flaky.url);
    const one = join(dir, 'one.yaml');
    writeFileSync(one, 'operation: {concurrency: 1}\n');
    p.extra.push(one);
    const r = await backup(p);
    await flaky.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.cap).toBe(clean);
    for (const kind of kinds) expect(flaky.applied[kind], kind).toBeGreaterThanOrEqual(2);
    expect(r.stderr).toMatch(/retrying/);
  });

  it("the result's lafs-dir link is made on backup's long budget, not the short one of other commands", async () => {
    const c = new TahoeClient({ url: env.url });
    const lafs = await c.mkdirMutable();
    await c.close();
    let links = 0;
    // The link fails twice: past a short budget of one retry, within backup's three.
    const flaky = await startFlaky(env.url, (_n, req) => (req.method === 'PUT' && req.url.includes('t=uri') && ++links <= 2 ? '503' : 'ok'));
    const dir = tempDir();
    const p = via(project(dir, source, env.url), flaky.url, `http: {interactive_retry: {attempts: 1, delay: [0.02]}}\ndestination: {result: {append_to_lafs_dir: '${lafs}'}}\n`);
    const r = await backup(p);
    await flaky.close();
    expect(r.code, r.stderr).toBe(0);
    expect(links).toBe(3);
    const back = new TahoeClient({ url: env.url });
    expect((await back.info(lafs)).children?.src?.ro_uri).toBe(r.cap);
    await back.close();
  });

  itEmbedded('beyond the budget: one clear line, exit 1, the cache consistent; the rerun uploads only what is left', async () => {
    const dir = tempDir();
    let puts = 0;
    const flaky = await startFlaky(env.url, (_n, req) => (req.method === 'PUT' && ++puts > 10 ? '503' : 'ok'));
    const base = project(dir, source, env.url);
    const r = await backup(via(base, flaky.url));
    await flaky.close();
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').pop()!;
    expect(last).toMatch(/^lafs-backup: PUT \/uri \(upload\): gateway answered 503: the grid has too few storage servers connected for shares.happy: .* \(gateway: UploadUnhappinessError: not enough servers \(cap#[0-9a-f]{10}\)\)$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(cacheRows(base.cache, 'PRAGMA integrity_check')[0]!.integrity_check).toBe('ok');
    const cached = cacheRows(base.cache, 'SELECT count(*) AS n FROM entries WHERE kind = 0')[0]!.n as number;
    expect(cached).toBeGreaterThanOrEqual(6);
    env.grid.resetStats();
    const again = await backup(base);
    expect(again.code).toBe(0);
    expect(again.cap).toBe(clean);
    expect(env.grid.stats.put_uri).toBe(24 - cached);
  });

  it('a gateway that is down at the start: one line naming its URL within seconds (the short budget, whatever http.retry says); nothing scanned', async () => {
    const dir = tempDir();
    const p = project(dir, source, env.url);
    // The long budget at its defaults (10 + 60 + 600 s…): the start probe does not use it.
    writeFileSync(join(dir, 'down.yaml'), "destination: {url: 'http://127.0.0.1:9/uri'}\nhttp: {retry: {attempts: 4, delay: [10, 60, 600]}}\n");
    p.extra.push(join(dir, 'down.yaml'));
    const started = Date.now();
    const r = await backup(p, [], { timeoutMs: 120_000 });
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    const lines = r.stderr.trim().split('\n');
    expect(lines.pop()).toBe("lafs-backup: GET /?t=json (the gateway's welcome page): cannot reach the gateway at http://127.0.0.1:9/uri (ECONNREFUSED)");
    // Every wait of the short budget (http.interactive_retry: 1 s, 3 s) is a WARN saying what failed and when the next try is.
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ WARN GET \/\?t=json \(the gateway's welcome page\): cannot reach the gateway at http:\/\/127\.0\.0\.1:9\/uri \(ECONNREFUSED\); retrying in 1 s, at \d{4}-\d\d-\d\dT[\d:.]+Z \(retry 1 of 2\)/);
    expect(lines[1]).toMatch(/; retrying in 3 s, at .*Z \(retry 2 of 2\)/);
    expect(existsSync(p.queue)).toBe(false);
  });

  it('a truncated deep-check stream is a failed check with a clear line, not a crash', async () => {
    const dir = tempDir();
    const flaky = await startFlaky(env.url, (_n, req) => (req.url.includes('stream-deep-check') ? 'truncate' : 'ok'));
    const p = via(project(dir, source, env.url), flaky.url, ROOMY);
    const r = await runCli([...configArgs(p), 'check', clean]);
    await flaky.close();
    expect(r.code).toBe(4);
    expect(r.stdout.trim()).toMatch(/^cap#[0-9a-f]{10}: check failed: POST \?t=stream-deep-check of cap#[0-9a-f]{10}: the stream ended early \(in the middle of a line\): truncated answer$/);
  });

  it('a deep-check stream cut off by a broken connection is a failed check (exit 4), not an internal error', async () => {
    const dir = tempDir();
    const flaky = await startFlaky(env.url, (_n, req) => (req.url.includes('stream-deep-check') ? 'reset-mid-response' : 'ok'));
    const p = via(project(dir, source, env.url), flaky.url, ROOMY);
    const r = await runCli([...configArgs(p), 'check', clean]);
    await flaky.close();
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout.trim()).toMatch(/^cap#[0-9a-f]{10}: check failed: POST \?t=stream-deep-check of cap#[0-9a-f]{10}: the stream was cut off/);
  });
});

describe('outages', () => {
  let source: string;
  let clean: string;
  let cleanDir: string;
  beforeAll(async () => {
    cleanDir = tempDir();
    source = join(cleanDir, 'src');
    // Large files (streamed, > 256 KiB) and small ones (read whole).
    makeTree(source, { big: { a: randomBytes(1_500_000), b: randomBytes(700_000) }, small: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`s${i}`, randomBytes(3000 + i)])) });
    clean = (await backup(project(cleanDir, source, env.url))).cap;
  });

  it('connections refused for two seconds, then back: exit 0 and every file in the backup, large and small', async () => {
    let puts = 0;
    let flaky: Flaky | undefined = undefined;
    // On the third upload the gateway goes away for 2 s; the retry budget is 4 × 1 s.
    flaky = await startFlaky(env.url, (_n, req) => {
      if (req.method === 'PUT' && ++puts === 3) {
        flaky!.outage(2000);
        return 'reset';
      }
      return 'ok';
    });
    const dir = tempDir();
    const p = project(dir, source, env.url);
    const extra = join(dir, 'outage.yaml');
    writeFileSync(extra, `destination: {url: '${flaky.url}'}\nhttp: {retry: {attempts: 4, delay: [1]}}\n`);
    p.extra.push(extra);
    const r = await backup(p);
    await flaky.close();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/cannot read|skipped/);
    expect(r.cap).toBe(clean);
    const back = await readBack(env.url, r.cap);
    expect(back.get('big/a')!.content!.equals(readFileSync(join(source, 'big', 'a')))).toBe(true);
    expect(back.get('big/b')!.content!.equals(readFileSync(join(source, 'big', 'b')))).toBe(true);
    expect([...back.keys()].filter((k) => k.startsWith('small/'))).toHaveLength(12);
  });

  it('refused for good in the middle of a backup: the long budget, every wait a WARN (once per round, not per request), then exit 1 with one line', async () => {
    const dir = tempDir();
    const many: Spec = {};
    for (let i = 0; i < 200; i++) many[`f${i}`] = randomBytes(2000);
    makeTree(join(dir, 'src'), many);
    const p = project(dir, join(dir, 'src'), env.url);
    let flaky: Flaky | undefined = undefined;
    // The start probe is answered; at the first upload the gateway goes away for good.
    flaky = await startFlaky(env.url, (_n, req) => {
      if (req.method !== 'PUT') return 'ok';
      flaky!.outage(Infinity);
      return 'reset';
    });
    const attempts = 3;
    const delay = 1;
    const budget = attempts * delay;
    writeFileSync(join(dir, 'dead.yaml'), `destination: {url: '${flaky.url}'}\nhttp: {retry: {attempts: ${attempts}, delay: [${delay}]}}\noperation: {concurrency: 8}\n`);
    p.extra.push(join(dir, 'dead.yaml'));
    const started = Date.now();
    const r = await backup(p);
    const elapsed = (Date.now() - started) / 1000;
    await flaky.close();
    expect(r.code).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(budget);
    expect(elapsed).toBeLessThan(2 * budget + 1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('lafs-backup: '))).toEqual([`lafs-backup: PUT /uri (upload): cannot reach the gateway at ${flaky.url} (ECONNREFUSED)`]);
    // One warning per wait of the outage, not one per queued upload.
    const warns = lines.filter((l) => / WARN /.test(l));
    expect(warns.map((l) => /\(retry (\d) of 3\)/.exec(l)?.[1])).toEqual(['1', '2', '3']);
    for (const w of warns) expect(w).toMatch(/ WARN PUT \/uri \(upload\): .*; retrying in 1 s, at \d{4}-\d\d-\d\dT[\d:.]+Z \(retry \d of 3\)/);
  });

  itEmbedded('a grid with too few storage servers: one line in words, servers and shares counted, no HTML', async () => {
    const grid = await startGrid();
    try {
      grid.setServer(2, false);
      grid.setServer(3, false);
      const dir = tempDir();
      const p = project(dir, source, grid.url);
      const r = await backup(p);
      expect(r.code).toBe(1);
      const last = r.stderr.trim().split('\n').pop()!;
      expect(last).toMatch(/^lafs-backup: PUT \/uri \(upload\): gateway answered 500: the grid has too few storage servers connected for shares\.happy \(shares could be placed on only 2 server\(s\), 3 are needed\): start more storage servers, or lower shares\.happy in the gateway's tahoe\.cfg \(gateway: UploadUnhappinessError: server selection failed/);
      expect(r.stderr).not.toMatch(/<style|<div|<span|&lt;|&gt;/);
    } finally {
      await grid.stop();
    }
  });
});
