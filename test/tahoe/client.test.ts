/** The web-API client, every call over loopback against the embedded grid (and a flaky proxy). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { loadHttp, TahoeClient } from '../../src/tahoe/client.js';
import { tryParseCap } from '../../src/tahoe/caps.js';
import { TahoeError } from '../../src/tahoe/errors.js';
import { isNodeUnit, type StreamUnit } from '../../src/tahoe/types.js';
import { startFlaky } from '../support/flaky.js';
import { itEmbedded, useGrid } from '../support/grid.js';

const env = useGrid();
const noRetry = { attempts: 0, delays: [0] };
const client = () => new TahoeClient({ url: env.url, retry: noRetry });

/** A stream of unknown length (no Content-Length can be known in advance). */
const streamOf = (buf: Buffer) => () => Readable.from((function* () {
  for (let i = 0; i < buf.length; i += 1000) yield buf.subarray(i, i + 1000);
})());

async function collect(it: AsyncIterable<StreamUnit>): Promise<StreamUnit[]> {
  const out: StreamUnit[] = [];
  for await (const u of it) out.push(u);
  return out;
}

async function caught(p: Promise<unknown>): Promise<TahoeError> {
  try {
    await p;
  } catch (e) {
    return e as TahoeError;
  }
  throw new Error('expected a failure');
}

describe('loading undici', () => {
  it('loads only its agent and request modules (not its whole index), which answer like undici.request', async () => {
    // The one-file command carries those, not undici's index (fetch, websockets, caches: 1 MiB
    // parsed at every start).
    const bundle = readFileSync(join(import.meta.dirname, '../../dist/bin/lafs-backup.js'), 'utf8');
    expect(bundle).toContain('// node_modules/undici/lib/dispatcher/agent.js');
    expect(bundle).not.toContain('// node_modules/undici/index.js');
    expect(bundle).not.toContain('// node_modules/undici/lib/web/fetch/index.js');
    const http = await loadHttp();
    const agent = new http.Agent({ connections: 1 });
    try {
      const put = await http.request(env.url, { method: 'PUT', body: Buffer.alloc(100, 'q'), dispatcher: agent });
      const cap = (await put.body.text()).trim();
      expect(put.statusCode).toBe(200);
      // A path and a query string both reach the gateway.
      const info = await http.request(`${env.url}/${cap}?t=json`, { method: 'GET', dispatcher: agent });
      expect(info.statusCode).toBe(200);
      expect(JSON.parse(await info.body.text())).toMatchObject(['filenode', { size: 100 }]);
    } finally {
      await agent.close();
    }
  });
});

describe('uploads and reads', () => {
  it('PUT /uri streams bodies of unknown length: LIT up to 55 bytes, CHK from 56, convergent', async () => {
    const c = client();
    const lit = await c.putFile(streamOf(Buffer.alloc(55, 'a')));
    const chk = await c.putFile(streamOf(Buffer.alloc(56, 'a')));
    expect(tryParseCap(lit)?.kind).toBe('LIT');
    expect(tryParseCap(chk)?.kind).toBe('CHK');
    expect(tryParseCap(chk)?.size).toBe(56);
    const big = randomBytes(300_000);
    const a = await c.putFile(streamOf(big));
    const b = await c.putFile(streamOf(big));
    expect(a).toBe(b);
    expect(Buffer.concat(await (await c.download(a)).toArray())).toEqual(big);
    const info = await c.info(a);
    expect(info).toMatchObject({ type: 'filenode', mutable: false, format: 'CHK', size: 300_000, ro_uri: a });
    expect(info.verify_uri).toMatch(/^URI:CHK-Verifier:/);
    await c.close();
  });

  it('mkdir-immutable keeps metadata as sent; order of children does not matter, order of metadata keys does', async () => {
    const c = client();
    const f = await c.putFile(streamOf(Buffer.alloc(100, 'x')));
    const kids = [
      { name: 'a.txt', type: 'filenode' as const, cap: f, metadata: { uid: '1000', gid: '1000', mode: '100644' } },
      { name: 'b', type: 'filenode' as const, cap: 'URI:LIT:nbswy3dpeb3w64tmmqfa', metadata: { mode: '100600' } },
    ];
    const d1 = await c.mkdirImmutable(kids);
    const d2 = await c.mkdirImmutable([...kids].reverse());
    const d3 = await c.mkdirImmutable([{ ...kids[0]!, metadata: { gid: '1000', uid: '1000', mode: '100644' } }, kids[1]!]);
    expect(d1).toBe(d2);
    expect(d1).not.toBe(d3);
    expect(tryParseCap(d1)?.kind).toBe('DIR2-CHK');
    const info = await c.info(d1);
    expect(Object.keys(info.children!)).toEqual(['a.txt', 'b']);
    expect(info.children!['a.txt']!.metadata).toEqual({ uid: '1000', gid: '1000', mode: '100644' });
    expect(Object.keys(info.children!['a.txt']!.metadata!)).toEqual(['uid', 'gid', 'mode']);
    expect(await c.mkdirImmutable([])).toBe('URI:DIR2-LIT:');
    const viaPath = await c.info(d1, ['a.txt']);
    expect(viaPath.metadata).toEqual({ uid: '1000', gid: '1000', mode: '100644' });
    expect(await text(await c.download(d1, ['b']))).toBe('hello world\n');
    await c.close();
  });

  itEmbedded('validates every child cap before sending anything', async () => {
    const c = client();
    env.grid.resetStats();
    const bad = [
      { name: 'x', type: 'filenode' as const, cap: 'garbage', metadata: {} },
      { name: 'x', type: 'filenode' as const, cap: 'URI:CHK:notacap', metadata: {} },
      { name: 'x', type: 'dirnode' as const, cap: 'URI:DIR2:qi5mtylrkriv3kdg6afjdfgr54:dnryyavbqfhx6hhk2tdpd4k55zf7kjldusrzwr73j5bewtmzsafq', metadata: {} },
      { name: 'x', type: 'dirnode' as const, cap: 'URI:LIT:nbswy3dpeb3w64tmmqfa', metadata: {} },
    ];
    for (const kid of bad) {
      const e = await caught(c.mkdirImmutable([kid]));
      expect(e.exitCode).toBeGreaterThan(0);
      expect(e.message).not.toMatch(/URI:DIR2:|URI:CHK:notacap/);
    }
    expect(env.grid.stats.mkdir_immutable).toBe(0);
    await c.close();
  });

  it('typed errors: 404 for a missing child, 410 for a dircap with no shares, never the cap in the message', async () => {
    const c = client();
    const d = await c.mkdirImmutable([{ name: 'a', type: 'filenode', cap: 'URI:LIT:', metadata: {} }]);
    const missing = await caught(c.info(d, ['nope']));
    expect(missing.tahoeCode).toBe('not-found');
    const ghost = 'URI:DIR2-CHK:cwxvzzci5sjtxzlp7awbxeopjm:vl7lv7g4zmxychhonethqzrp2ljicgx4qpcvniyxz22vpaelolka:2:4:300';
    const gone = await caught(c.info(ghost));
    expect(gone.tahoeCode).toBe('gone');
    expect(gone.status).toBe(410);
    expect(gone.message).toContain('GET ?t=json of cap#');
    expect(gone.message).not.toContain('URI:');
    await c.close();
  });
});

describe('mutable directories', () => {
  it('mkdir, link (replace by default, 409 without), unlink (404 means already gone)', async () => {
    const c = client();
    const dir = await c.mkdirMutable();
    expect(tryParseCap(dir)?.kind).toBe('DIR2');
    const f = await c.putFile(streamOf(Buffer.alloc(70, 'y')));
    await c.link(dir, 'backup-1', f);
    await c.link(dir, 'backup-1', f);
    const conflict = await caught(c.link(dir, 'backup-1', f, false));
    expect(conflict.tahoeCode).toBe('conflict');
    const info = await c.info(dir);
    expect(info.mutable).toBe(true);
    expect(info.children!['backup-1']!.metadata).toHaveProperty('tahoe.linkcrtime');
    expect(await c.unlink(dir, 'backup-1')).toBe(true);
    expect(await c.unlink(dir, 'backup-1')).toBe(false);
    await c.close();
  });
});

describe('deep-check and manifest streams', () => {
  itEmbedded('yields units then stats; add-lease renews leases; damage shows; repair heals', async () => {
    const c = client();
    const f = await c.putFile(streamOf(randomBytes(5000)));
    const sub = await c.mkdirImmutable([{ name: 'f', type: 'filenode', cap: f, metadata: {} }]);
    const root = await c.mkdirImmutable([
      { name: 'sub', type: 'dirnode', cap: sub, metadata: {} },
      { name: 'lit', type: 'filenode', cap: 'URI:LIT:nbswy3dpeb3w64tmmqfa', metadata: {} },
    ]);
    const manifest = await collect(c.manifest(root));
    expect(manifest.filter(isNodeUnit).map((u) => u.path.join('/'))).toEqual(['', 'lit', 'sub', 'sub/f']);
    expect(manifest.at(-1)?.type).toBe('stats');
    const before = env.grid.object(f)!.leaseRenewals;
    const healthy = await collect(c.deepCheck(root, { addLease: true }));
    expect(healthy.filter(isNodeUnit).every((u) => u['check-results']?.results?.healthy === true)).toBe(true);
    expect(env.grid.object(f)!.leaseRenewals).toBe(before + 1);

    env.grid.damage(f, 1);
    const sick = (await collect(c.deepCheck(root))).filter(isNodeUnit).find((u) => u.path.join('/') === 'sub/f')!;
    expect(sick['check-results']?.results?.healthy).toBe(false);
    expect(sick['check-results']?.summary).toBe('Not Healthy: 3 shares (enc 2-of-4)');
    const repaired = (await collect(c.deepCheck(root, { repair: true }))).filter(isNodeUnit).find((u) => u.path.join('/') === 'sub/f')!;
    expect(repaired['check-and-repair-results']?.['repair-successful']).toBe(true);
    expect(env.grid.object(f)!.sharesGood).toBe(4);
    await c.close();
  });

  itEmbedded('ends with an ERROR unit (not a crash) when a directory is unrecoverable', async () => {
    const c = client();
    const inner = await c.mkdirImmutable([{ name: 'x', type: 'filenode', cap: await c.putFile(streamOf(randomBytes(200))), metadata: {} }]);
    const root = await c.mkdirImmutable([{ name: 'inner', type: 'dirnode', cap: inner, metadata: {} }]);
    env.grid.damage(inner);
    const units = await collect(c.deepCheck(root));
    const last = units.at(-1)!;
    expect(last.type).toBe('error');
    expect((last as { message: string }).message).toMatch(/^NoSharesError/);
    expect(units.some((u) => u.type === 'stats')).toBe(false);
    await c.close();
  });
});

describe('retries and time limits', () => {
  it('retries connection resets and 5xx answers, then succeeds', async () => {
    const flaky = await startFlaky(env.url, (n) => (n === 0 ? 'reset' : n === 1 ? '503' : 'ok'));
    const c = new TahoeClient({ url: flaky.url, retry: { attempts: 3, delays: [0.01] } });
    const cap = await c.putFile(streamOf(randomBytes(10_000)));
    expect(tryParseCap(cap)?.kind).toBe('CHK');
    expect(flaky.requests).toBe(3);
    await c.close();
    await flaky.close();
  });

  it('never retries a 4xx answer', async () => {
    const flaky = await startFlaky(env.url, () => '400');
    const c = new TahoeClient({ url: flaky.url, retry: { attempts: 5, delays: [0] } });
    const e = await caught(c.putFile(streamOf(randomBytes(100))));
    expect(e.tahoeCode).toBe('bad-request');
    expect(flaky.requests).toBe(1);
    await c.close();
    await flaky.close();
  });

  it('gives up after the retry budget with one clear error, caps scrubbed from the gateway text', async () => {
    const flaky = await startFlaky(env.url, () => '503');
    const c = new TahoeClient({ url: flaky.url, retry: { attempts: 2, delays: [0.01, 0.02] } });
    const e = await caught(c.mkdirImmutable([]));
    expect(e.tahoeCode).toBe('unavailable');
    expect(flaky.requests).toBe(3);
    expect(e.message).toMatch(/gateway answered 503: the grid has too few storage servers .*UploadUnhappinessError/);
    expect(e.message).not.toContain('URI:');
    await c.close();
    await flaky.close();
  });

  it('a gateway that stops answering hits the deadline and is retried', async () => {
    const flaky = await startFlaky(env.url, (n) => (n === 0 ? 'hang' : 'ok'));
    const c = new TahoeClient({ url: flaky.url, timeout: 0.3, retry: { attempts: 1, delays: [0] } });
    const info = await c.info('URI:LIT:nbswy3dpeb3w64tmmqfa');
    expect(info.size).toBe(12);
    expect(flaky.requests).toBe(2);
    await c.close();
    await flaky.close();
  });

  it('an upload whose answer never comes hits the per-object limit, once per attempt', async () => {
    const flaky = await startFlaky(env.url, () => 'hang');
    const c = new TahoeClient({ url: flaky.url, uploadTimeouts: [0.2, 0.3], retry: { attempts: 1, delays: [0] } });
    const started = Date.now();
    const e = await caught(c.putFile(streamOf(randomBytes(1000))));
    expect(e.tahoeCode).toBe('timeout');
    expect(e.message).toMatch(/did not answer within/);
    expect(flaky.requests).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    await c.close();
    await flaky.close();
  });

  it('a stalled upload body hits the per-object limit', async () => {
    const c = new TahoeClient({ url: env.url, uploadTimeouts: [0.2], retry: noRetry });
    const stalled = () => new Readable({ read() { this.push(Buffer.alloc(10)); this.pause(); } });
    const e = await caught(c.putFile(stalled));
    expect(e.tahoeCode).toBe('timeout');
    expect(e.message).toMatch(/stalled/);
    await c.close();
  });

  it('a local read error while uploading is not retried as a gateway fault', async () => {
    const flaky = await startFlaky(env.url, () => 'ok');
    const c = new TahoeClient({ url: flaky.url, retry: { attempts: 3, delays: [0] } });
    const failing = () => new Readable({ read() { this.destroy(Object.assign(new Error('EIO: disk'), { code: 'EIO' })); } });
    await expect(c.putFile(failing)).rejects.toThrow(/EIO/);
    expect(flaky.requests).toBeLessThanOrEqual(1);
    await c.close();
    await flaky.close();
  });
});
