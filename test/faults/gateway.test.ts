/**
 * Gateway faults, through a fault-injecting proxy in front of the embedded grid: 5xx answers,
 * connections reset before, during and after the request body, a gateway that stops
 * answering, truncated deep-check streams.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { backup, cacheRows, configArgs, project, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { startFlaky, type Fault } from '../support/flaky.js';
import { useGrid } from '../support/grid.js';
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

/** A project whose gateway is `url`, with quick retries and time limits. */
function via(p: Project, url: string): Project {
  const extra = join(p.dir, `via-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(extra, `destination: {url: '${url}'}\n${FAST}`);
  return { ...p, extra: [...p.extra, extra] };
}

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

  it('beyond the budget: one clear line, exit 1, the cache consistent; the rerun uploads only what is left', async () => {
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

  it('a gateway that is down: exit 1 with one line after the retries', async () => {
    const dir = tempDir();
    const p = via(project(dir, source, env.url), 'http://127.0.0.1:9/uri');
    const r = await backup(p);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^lafs-backup: PUT \/uri \(upload\): cannot reach the gateway \(ECONNREFUSED\)$/);
  });

  it('a truncated deep-check stream is a failed check with a clear line, not a crash', async () => {
    const dir = tempDir();
    const flaky = await startFlaky(env.url, (_n, req) => (req.url.includes('stream-deep-check') ? 'truncate' : 'ok'));
    const p = via(project(dir, source, env.url), flaky.url);
    const r = await runCli([...configArgs(p), 'check', clean]);
    await flaky.close();
    expect(r.code).toBe(1);
    expect(r.stdout.trim()).toMatch(/^cap#[0-9a-f]{10}: check failed: POST \?t=stream-deep-check of cap#[0-9a-f]{10}: the stream ended early \(in the middle of a line\): truncated answer$/);
  });
});
