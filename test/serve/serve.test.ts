/**
 * `serve` end to end: the real CLI serving two generations of a backup made against the grid,
 * asked over HTTP on loopback — sign-in (token → cookie), refusals (no token, wrong Host), every
 * page and API answer, previews and downloads of hostile content, paging, WebDAV, the memory a
 * large download takes, and a client that stops reading.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, utimesSync, writeFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { backup, configArgs, project, type Project } from '../support/backup.js';
import { expectCli, expectRun } from '../support/cli.js';
import { EXTERNAL, itEmbedded, useGrid } from '../support/grid.js';
import { makeTree, tempDir, writeRaw } from '../support/tree.js';
import { memoryOf, request, signIn, startServe, type Served } from './support.js';

const env = useGrid();
const CAP = /URI(:|%3A)/i;
const HOSTILE = '<img src=x onerror=alert(1)>.txt';
const EVIL_HTML = '<!doctype html><script>document.title="pwned"</script><p>hi</p>';
const BIG = 96 * 1024 * 1024;

let p: Project;
let s: Served;
let cookie: string;
let bigSha: string;
const get = (path: string, headers: Record<string, string> = {}) => request(s.port, path, { headers: { cookie, ...headers } });
const api = async (path: string) => {
  const a = await get(path);
  expect(a.status, a.text).toBe(200);
  expect(a.text).not.toMatch(CAP);
  return JSON.parse(a.text) as Record<string, any>;
};

beforeAll(async () => {
  const dir = tempDir('lb-serve-');
  const src = join(dir, 'src');
  const block = randomBytes(64 * 1024);
  const big = Buffer.alloc(BIG);
  for (let i = 0; i < BIG; i += block.length) block.copy(big, i);
  bigSha = createHash('sha256').update(big).digest('hex');
  makeTree(src, {
    'changing.txt': 'first version\n',
    'gone.txt': 'removed in the second backup\n',
    'evil.html': EVIL_HTML,
    'evil.svg': '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    [HOSTILE]: 'a hostile name\n',
    'notes.txt': 'line\n'.repeat(3000),
    'big.bin': big,
    many: Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`f${String(i).padStart(5, '0')}`, ''])),
    sub: { 'deep.txt': 'deep\n' },
  });
  writeRaw(src, Buffer.from([0x6e, 0xff, 0x0a, 0x2e, 0x74, 0x78, 0x74]), 'not UTF-8, with a newline\n');
  p = project(dir, src, env.url, "destination: {encoding: {xz: {options: {preset: 1}}}}\n");
  expectRun(await backup(p));
  writeFileSync(join(src, 'changing.txt'), 'second version, longer\n');
  const later = new Date(Date.now() - 1800_000);
  utimesSync(join(src, 'changing.txt'), later, later);
  rmSync(join(src, 'gone.txt'));
  writeFileSync(join(src, 'added.txt'), 'new\n');
  utimesSync(join(src, 'added.txt'), later, later);
  // The second backup must finish in another second than the first: folders are named by time.
  await new Promise((ok) => setTimeout(ok, 1100));
  expectRun(await backup(p));
  s = await startServe(configArgs(p));
  cookie = await signIn(s);
}, 240_000);

afterAll(async () => {
  if (s) expect(await s.stop()).toBe(0);
});

describe('serve: who may ask', () => {
  it('without the token or the cookie every request is 401; a wrong token too', async () => {
    for (const path of ['/', '/api/', '/b/src/latest/', '/dl/src/latest/notes.txt', '/style.css']) expect((await request(s.port, path)).status, path).toBe(401);
    expect((await request(s.port, '/?token=wrong')).status).toBe(401);
    expect((await request(s.port, '/', { headers: { cookie: `lafs_backup_${s.port}=forged` } })).status).toBe(401);
    const a = await request(s.port, '/api/');
    expect(a.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('the token is swapped for an HttpOnly SameSite=Strict cookie and leaves the address; the cookie then opens every page', async () => {
    const a = await request(s.port, `/?token=${s.token}`);
    expect(a.status).toBe(303);
    expect(a.headers.location).toBe('/');
    const set = String(a.headers['set-cookie']);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).not.toContain(s.token);
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('src');
  });

  it('a Host header that is not the address served is refused (DNS rebinding), even with the cookie', async () => {
    expect((await request(s.port, '/', { headers: { cookie }, host: `attacker.example:${s.port}` })).status).toBe(421);
    expect((await request(s.port, '/', { headers: { cookie }, host: '127.0.0.1:1' })).status).toBe(421);
    expect((await request(s.port, '/', { headers: { cookie }, host: `localhost:${s.port}` })).status).toBe(200);
  });

  it('every answer has a strict policy, nosniff, no framing and no CORS header; only GET and HEAD outside /dav/', async () => {
    const a = await get('/', { origin: 'http://attacker.example' });
    expect(a.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(a.headers['content-security-policy']).not.toMatch(/script-src/);
    expect(a.headers['x-content-type-options']).toBe('nosniff');
    expect(a.headers['x-frame-options']).toBe('DENY');
    expect(Object.keys(a.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    expect((await request(s.port, '/', { method: 'POST', headers: { cookie } })).status).toBe(405);
    expect((await request(s.port, '/api/', { method: 'OPTIONS', headers: { cookie, origin: 'http://attacker.example' } })).status).toBe(405);
  });
});

describe('serve: pages and API', () => {
  it('backups: both generations with their figures, the chart, no cap', async () => {
    const j = await api('/api/?wait=1');
    expect(j.complete).toBe(true);
    const series = j.backups.find((b: any) => b.name === 'src');
    expect(series.generations).toHaveLength(2);
    const [newest, oldest] = series.generations;
    expect(newest.folder).toMatch(/^\d{4}-\d\d-\d\dT\d{6}Z$/);
    expect(newest.generation).toBe(2);
    expect(oldest.files).toBe(1200 + 9);
    expect(newest.bytes).toBeGreaterThan(BIG);
    expect(newest.new.files).toBeGreaterThanOrEqual(2);
    const page = await get('/');
    expect(page.text).toContain('<svg class="chart"');
    expect(page.text).toContain(newest.folder);
    expect(page.text).not.toMatch(CAP);
  });

  it('browse: a directory table with mode, owner, size, mtime, encoding; a 1200-entry directory in pages of 500', async () => {
    const root = await api('/api/ls/src/latest/');
    const names = root.entries.map((e: any) => e.name);
    expect(names).toEqual(expect.arrayContaining(['added.txt', 'changing.txt', 'big.bin', 'many', 'sub', HOSTILE]));
    const notes = root.entries.find((e: any) => e.name === 'notes.txt');
    expect(notes).toMatchObject({ type: 'file', size: 15000, enc: 'xz', mode: '644' });
    const pages = [1, 2, 3].map((n) => api(`/api/ls/src/latest/many?page=${n}`));
    const [a, b, c] = await Promise.all(pages);
    expect([a.total, a.pages]).toEqual([1200, 3]);
    expect([a.entries.length, b.entries.length, c.entries.length]).toEqual([500, 500, 200]);
    expect(c.entries.at(-1).name).toBe('f01199');
    const html = await get('/b/src/latest/many?page=2');
    expect(html.text).toContain('page 2 of 3');
    expect(html.text.match(/<tr>/g)!.length).toBe(501);
    expect(html.text).toContain(`href="/b/src/${a.folder}/many?page=3"`);
  });

  it('a file: its page (preview, download, history), its API answer', async () => {
    const j = await api('/api/ls/src/latest/notes.txt');
    expect(j.entry).toMatchObject({ name: 'notes.txt', size: 15000 });
    const folder = (await api('/api/')).backups[0].generations[0].folder;
    const page = await get('/b/src/latest/notes.txt');
    expect(page.text).toContain(`<iframe class="preview" sandbox src="/raw/src/${folder}/notes.txt"`);
    expect(page.text).toContain(`href="/dl/src/${folder}/notes.txt"`);
    expect(page.text).toContain('href="/history/src/notes.txt"');
  });

  it('search across backups and generations: hits in both, a page and an API answer', async () => {
    const j = await api('/api/search?q=changing.txt');
    expect(j.hits.map((h: any) => h.generation)).toEqual([2, 1]);
    expect((await api('/api/search?q=sub/*.txt')).hits.map((h: any) => h.path)).toEqual(['sub/deep.txt', 'sub/deep.txt']);
    expect((await api('/api/search?q=GONE.TXT&i=1')).hits).toHaveLength(1);
    const page = await get('/search?q=*.txt');
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/history/src/changing.txt"');
  });

  it('history of one path: every generation where it changed, each with a download', async () => {
    const j = await api('/api/history/src/changing.txt');
    expect(j.history.map((r: any) => [r.generation, r.change])).toEqual([[2, 'changed'], [1, 'first']]);
    const gone = await api('/api/history/src/gone.txt');
    expect(gone.history.map((r: any) => [r.generation, r.change])).toEqual([[2, 'removed'], [1, 'first']]);
    const page = await get('/history/src/changing.txt');
    const links = [...page.text.matchAll(/href="(\/dl\/src\/[^"]+\/changing\.txt)"/g)].map((m) => m[1]!);
    expect(links).toHaveLength(2);
    expect((await get(links[0]!)).text).toBe('second version, longer\n');
    expect((await get(links[1]!)).text).toBe('first version\n');
  });

  it('diff of two generations: added, removed, changed', async () => {
    const j = await api('/api/');
    const [b, a] = j.backups[0].generations.map((g: any) => g.folder);
    const d = await api(`/api/diff?name=src&a=${a}&b=${b}`);
    expect(d.added).toEqual(['added.txt']);
    expect(d.removed).toEqual(['gone.txt']);
    expect(d.changed.map((c: any) => c.path)).toEqual(['changing.txt']);
    const page = await get(`/diff?name=src&a=${a}&b=${b}`);
    expect(page.text).toContain('3 differences');
  });

  it('what is not there is 404, a path with .. or an encoded slash 400', async () => {
    expect((await get('/b/src/latest/nope')).status).toBe(404);
    expect((await get('/b/nobackup/latest/')).status).toBe(404);
    expect((await get('/b/src/1999-01-01T000000Z/')).status).toBe(404);
    expect((await get('/b/src/latest/sub/..')).status).toBe(400);
    expect((await get('/b/src/latest/sub%2Fdeep.txt')).status).toBe(400);
    expect((await get('/api/ls/src/latest/%2e%2e')).status).toBe(400);
  });
});

describe('serve: backed-up content is never active', () => {
  it('names are escaped in every page', async () => {
    for (const path of ['/b/src/latest/', '/search?q=*.txt', `/history/src/${encodeURIComponent(HOSTILE)}`]) {
      const a = await get(path);
      expect(a.text, path).not.toContain('<img src=x');
    }
    const page = await get('/b/src/latest/');
    expect(page.text).toContain('&#60;img src=x onerror=alert(1)&#62;.txt');
    // The name that is not UTF-8 (and holds a newline) is shown escaped, and reached by its bytes.
    expect(page.text).toContain('n\\xff\\n.txt');
    expect((await get('/dl/src/latest/n%FF%0A.txt')).text).toBe('not UTF-8, with a newline\n');
  });

  it('an HTML or SVG file is downloaded as an attachment, previewed as sandboxed plain text', async () => {
    for (const name of ['evil.html', 'evil.svg']) {
      const dl = await get(`/dl/src/latest/${name}`);
      expect(dl.headers['content-type']).toBe('application/octet-stream');
      expect(dl.headers['content-disposition']).toMatch(new RegExp(`^attachment; filename="${name}"`));
      expect(dl.headers['content-security-policy']).toMatch(/sandbox/);
      const pv = await get(`/raw/src/latest/${name}`);
      expect(pv.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(pv.headers['content-security-policy']).toMatch(/sandbox/);
      expect(pv.headers['x-content-type-options']).toBe('nosniff');
    }
    expect((await get('/raw/src/latest/evil.html')).text).toBe(EVIL_HTML);
  });

  it('a preview of a large text file stops at 256 KiB', async () => {
    expect((await get('/raw/src/latest/big.bin')).body.length).toBe(256 * 1024);
  });
});

describe('serve: downloads', () => {
  it('a directory as tar and as zip', async () => {
    const dir = tempDir('lb-serve-dl-');
    const tar = await get('/dl/src/latest/sub?format=tar');
    expect(tar.headers['content-disposition']).toMatch(/filename="sub\.tar"/);
    writeFileSync(join(dir, 'sub.tar'), tar.body);
    expect(execFileSync('tar', ['-tf', join(dir, 'sub.tar')], { encoding: 'utf8' }).split('\n').filter(Boolean)).toEqual(['sub/', 'sub/deep.txt']);
    const zip = await get('/dl/src/latest/sub?format=zip');
    expect(zip.body.subarray(0, 2).toString()).toBe('PK');
    writeFileSync(join(dir, 'sub.zip'), zip.body);
    expect(execFileSync('python3', ['-c', 'import sys,zipfile; print(zipfile.ZipFile(sys.argv[1]).read("sub/deep.txt").decode(), end="")', join(dir, 'sub.zip')], { encoding: 'utf8' })).toBe('deep\n');
  });

  it("a 96 MiB file downloads byte-identical while the server's memory does not grow with it", async () => {
    await get('/dl/src/latest/notes.txt');
    const before = memoryOf(s.child.pid!);
    const a = await get('/dl/src/latest/big.bin');
    expect(a.headers['content-length']).toBe(String(BIG));
    expect(createHash('sha256').update(a.body).digest('hex')).toBe(bigSha);
    // Twice more: 288 MiB through the server in all.
    for (let i = 0; i < 2; i++) expect((await get('/dl/src/latest/big.bin')).body.length).toBe(BIG);
    const after = memoryOf(s.child.pid!);
    // Peak resident memory of the server grew by less than half of one file (measured: ~33 MiB, V8's uncollected chunks).
    expect(after.hwm - before.hwm, `VmHWM ${before.hwm} → ${after.hwm} kB`).toBeLessThan(48 * 1024);
  });
});

describe('serve: bounded in time, refused when unsafe', () => {
  it('a client that stops reading a download is dropped after --idle-timeout, and the server goes on', async () => {
    const slow = await startServe([...configArgs(p), '--idle-timeout', '1']);
    // Downloads the gateway is answering (the embedded grid's own server, watched from here).
    const open = new Set<ServerResponse>();
    const grid = EXTERNAL ? undefined : (env.grid as unknown as { server: Server }).server;
    const watch = (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && /^\/uri\/URI[^/?]*$/.test(req.url ?? '')) {
        open.add(res);
        res.on('close', () => open.delete(res));
      }
    };
    grid?.on('request', watch);
    try {
      const c = await signIn(slow);
      const sock = connect(slow.port, '127.0.0.1');
      await new Promise((ok) => sock.once('connect', ok));
      sock.write(`GET /dl/src/latest/big.bin HTTP/1.1\r\nHost: 127.0.0.1:${slow.port}\r\nCookie: ${c}\r\n\r\n`);
      // Read the first bytes, then nothing more: the kernel's buffers fill, the server's write waits.
      let got = 0;
      await new Promise((ok) => sock.once('data', (d: Buffer) => ok((got += d.length))));
      sock.pause();
      if (grid) expect(open.size).toBe(1);
      // Well past the deadline (1 s), read again: what the server had sent, then the end.
      await new Promise((ok) => setTimeout(ok, 5000));
      sock.on('data', (d: Buffer) => (got += d.length));
      sock.resume();
      await new Promise((ok) => sock.once('close', ok));
      expect(got).toBeLessThan(BIG / 2);
      // The download from the gateway behind it was given up too: no connection left pinned.
      if (grid) await expect.poll(() => open.size, { timeout: 20_000 }).toBe(0);
      expect((await request(slow.port, '/api/ls/src/latest/sub', { headers: { cookie: c } })).status).toBe(200);
    } finally {
      grid?.off('request', watch);
      expect(await slow.stop()).toBe(0);
    }
  });

  it('a host other than loopback needs --token-file (and is warned about plaintext); a token file others can read is refused', async () => {
    await expectCli([...configArgs(p), 'serve', '--host', '0.0.0.0'], { code: 2, stderr: /--token-file.*not encrypted.*TLS.*SSH/s });
    const tf = join(tempDir('lb-serve-tok-'), 'token');
    writeFileSync(tf, 'a-token-long-enough-1234\n');
    chmodSync(tf, 0o644);
    await expectCli([...configArgs(p), 'serve', '--token-file', tf], { code: 2, stderr: /can be read by others/ });
    chmodSync(tf, 0o600);
    const kept = await startServe([...configArgs(p), '--token-file', tf]);
    try {
      expect(kept.token).toBe('a-token-long-enough-1234');
    } finally {
      await kept.stop();
    }
    expect(readFileSync(tf, 'utf8')).toBe('a-token-long-enough-1234\n');
  });
});

describe('serve: warnings a person must see', () => {
  it('a backup whose leases were last renewed more than 21 days ago is warned about; a recent check ends the warning', async () => {
    const db = new Database(p.cache);
    const now = Math.floor(Date.now() / 1000);
    try {
      db.prepare('UPDATE backups SET ts = ? WHERE generation = 1').run(now - 40 * 86400);
      let fresh = await startServe(configArgs(p));
      try {
        const page = await request(fresh.port, '/', { headers: { cookie: await signIn(fresh) } });
        expect(page.text).toMatch(/The leases of src were last renewed 40 days ago \(never checked/);
      } finally {
        await fresh.stop();
      }
      db.prepare('UPDATE backups SET ts_check = ? WHERE generation = 2').run(now - 86400);
      fresh = await startServe(configArgs(p));
      try {
        const page = await request(fresh.port, '/', { headers: { cookie: await signIn(fresh) } });
        expect(page.text).not.toContain('The leases of');
        expect(page.text).toContain('(1 day ago)');
      } finally {
        await fresh.stop();
      }
    } finally {
      db.close();
    }
  });
  itEmbedded('a backup whose last check failed is warned about, with what the check found', async () => {
    const dir = tempDir('lb-serve-check-');
    makeTree(join(dir, 'lost'), { 'a.txt': 'a'.repeat(200), sub: { 'b.txt': 'b'.repeat(300) } });
    const q = project(dir, join(dir, 'lost'), env.url);
    const made = await backup(q);
    expectRun(made);
    // Before any check: no such warning.
    let served = await startServe(configArgs(q));
    try {
      const page = await request(served.port, '/', { headers: { cookie: await signIn(served) } });
      expect(page.text).not.toContain('The last check of');
    } finally {
      await served.stop();
    }
    env.grid.damage(made.cap);
    await expectCli([...configArgs(q), 'check', '-q'], { code: 4 });
    served = await startServe(configArgs(q));
    try {
      const page = await request(served.port, '/', { headers: { cookie: await signIn(served) } });
      expect(page.text).toMatch(/The last check of lost \(today\) failed: [^<]*no shares/i);
      expect(page.text).not.toMatch(/URI:/);
    } finally {
      await served.stop();
    }
  });
});
