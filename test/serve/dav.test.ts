/**
 * `serve`'s WebDAV (/dav/), read-only: PROPFIND Depth 0 and 1 at each level (backup names,
 * generation folders and `latest`, the tree), files byte-identical to the source (xz decoded)
 * through GET, every write method refused, HTTP Basic with the token as password — asked with
 * node:http and with curl as a WebDAV client.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { expectRun } from '../support/cli.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';
import { request, startServe, type Served } from './support.js';

const env = useGrid();
// Not execFileSync: the embedded grid answers from this very process.
const run = promisify(execFile);
let s: Served;
let src: string;
let basic: string;
const TEXT = 'a line of a log\n'.repeat(2000);

const propfind = (path: string, depth?: string, auth = basic) => request(s.port, path, { method: 'PROPFIND', headers: { authorization: auth, ...(depth === undefined ? {} : { depth }), 'content-type': 'application/xml' }, body: '<?xml version="1.0"?><propfind xmlns="DAV:"><allprop/></propfind>' });
const hrefs = (xml: string) => [...xml.matchAll(/<D:href>([^<]*)<\/D:href>/g)].map((m) => m[1]!);

beforeAll(async () => {
  const dir = tempDir('lb-dav-');
  src = join(dir, 'site');
  makeTree(src, { 'app.log': TEXT, 'index.html': '<script>alert(1)</script>', 'ünï cödé.txt': 'unicode\n', conf: { 'a.yaml': 'a: 1\n' } });
  const p = project(dir, src, env.url);
  expectRun(await backup(p));
  s = await startServe(configArgs(p));
  basic = `Basic ${Buffer.from(`anyone:${s.token}`).toString('base64')}`;
}, 120_000);

afterAll(async () => {
  if (s) expect(await s.stop()).toBe(0);
});

describe('WebDAV', () => {
  it('asks for HTTP Basic; any user name with the token as password is let in, a wrong password is not', async () => {
    const none = await propfind('/dav/', '0', '');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect((await propfind('/dav/', '0', `Basic ${Buffer.from('anyone:wrong').toString('base64')}`)).status).toBe(401);
    expect((await propfind('/dav/', '0')).status).toBe(207);
  });

  it('PROPFIND Depth 0 and 1: backup names, generation folders and latest, the tree with sizes and mtimes', async () => {
    const root0 = await propfind('/dav/', '0');
    expect(hrefs(root0.text)).toEqual(['/dav/']);
    expect(root0.text).toContain('<D:collection/>');
    expect(hrefs((await propfind('/dav/', '1')).text)).toEqual(['/dav/', '/dav/site/']);
    const gens = hrefs((await propfind('/dav/site/', '1')).text);
    expect(gens).toHaveLength(3);
    expect(gens[1]).toBe('/dav/site/latest/');
    expect(gens[2]).toMatch(/^\/dav\/site\/\d{4}-\d\d-\d\dT\d{6}Z\/$/);
    const tree = await propfind('/dav/site/latest/', '1');
    expect(hrefs(tree.text)).toEqual(['/dav/site/latest/', '/dav/site/latest/app.log', '/dav/site/latest/conf/', '/dav/site/latest/index.html', `/dav/site/latest/${encodeURIComponent('ünï cödé.txt')}`]);
    // The xz file's size as on disk, its mtime from the backup.
    const log = /<D:href>\/dav\/site\/latest\/app\.log<\/D:href>.*?<\/D:response>/s.exec(tree.text)![0];
    expect(log).toContain(`<D:getcontentlength>${TEXT.length}</D:getcontentlength>`);
    expect(log).toMatch(/<D:getlastmodified>\w{3}, \d\d \w{3} \d{4} [\d:]{8} GMT<\/D:getlastmodified>/);
    const one = await propfind('/dav/site/latest/conf/a.yaml', '0');
    expect(hrefs(one.text)).toEqual(['/dav/site/latest/conf/a.yaml']);
    expect(one.text).toContain('<D:getcontentlength>5</D:getcontentlength>');
    expect(tree.text).not.toMatch(/URI(:|%3A)/i);
  });

  it('PROPFIND Depth infinity is refused (403, propfind-finite-depth); a missing path is 404', async () => {
    const inf = await propfind('/dav/site/latest/', 'infinity');
    expect(inf.status).toBe(403);
    expect(inf.text).toContain('propfind-finite-depth');
    expect((await propfind('/dav/site/latest/nope', '0')).status).toBe(404);
    expect((await propfind('/dav/nobody/', '0')).status).toBe(404);
  });

  it('GET and HEAD give the file as on disk (xz decoded), byte-identical; an HTML file as an attachment', async () => {
    const get = await request(s.port, '/dav/site/latest/app.log', { headers: { authorization: basic } });
    expect(get.status).toBe(200);
    expect(get.body.equals(readFileSync(join(src, 'app.log')))).toBe(true);
    const head = await request(s.port, '/dav/site/latest/app.log', { method: 'HEAD', headers: { authorization: basic } });
    expect(head.headers['content-length']).toBe(String(TEXT.length));
    expect(head.body.length).toBe(0);
    const html = await request(s.port, '/dav/site/latest/index.html', { headers: { authorization: basic } });
    expect(html.headers['content-type']).toBe('application/octet-stream');
    expect(html.headers['content-disposition']).toMatch(/^attachment/);
  });

  it('every method that would write is refused (405, Allow lists the read ones); OPTIONS says DAV: 1', async () => {
    for (const method of ['PUT', 'DELETE', 'MKCOL', 'COPY', 'MOVE', 'PROPPATCH', 'LOCK', 'UNLOCK', 'POST', 'PATCH']) {
      const a = await request(s.port, '/dav/site/latest/app.log', { method, headers: { authorization: basic, destination: `http://127.0.0.1:${s.port}/dav/site/latest/x` }, body: 'x' });
      expect(a.status, method).toBe(405);
      expect(a.headers.allow).toBe('OPTIONS, GET, HEAD, PROPFIND');
    }
    const o = await request(s.port, '/dav/', { method: 'OPTIONS', headers: { authorization: basic } });
    expect(o.headers.dav).toBe('1');
    expect(hrefs((await propfind('/dav/site/latest/', '1')).text)).toHaveLength(5);
  });

  it('curl as a WebDAV client: lists with PROPFIND and fetches a file identical to the source (cmp)', async () => {
    const out = tempDir('lb-dav-curl-');
    const base = `http://127.0.0.1:${s.port}/dav/site/latest/`;
    const listing = (await run('curl', ['-sS', '--fail', '--max-time', '30', '-u', `me:${s.token}`, '-X', 'PROPFIND', '-H', 'Depth: 1', `${base}conf/`], { encoding: 'utf8' })).stdout;
    expect(hrefs(listing)).toEqual(['/dav/site/latest/conf/', '/dav/site/latest/conf/a.yaml']);
    const name = 'ünï cödé.txt';
    await run('curl', ['-sS', '--fail', '--max-time', '30', '-u', `me:${s.token}`, '-o', join(out, 'fetched'), `${base}${encodeURIComponent(name)}`]);
    await run('cmp', [join(out, 'fetched'), join(src, name)]);
    await run('curl', ['-sS', '--fail', '--max-time', '30', '-u', `me:${s.token}`, '-o', join(out, 'app.log'), `${base}app.log`]);
    await run('cmp', [join(out, 'app.log'), join(src, 'app.log')]);
  });
});
