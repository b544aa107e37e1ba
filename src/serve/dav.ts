/**
 * WebDAV, read-only, at /dav/: one folder per backup name, in it one folder per generation
 * (named by its time, `2026-12-04T181210Z`) and `latest`, in those the backup's tree; files are
 * served decompressed with their sizes and mtimes. PROPFIND (Depth 0 or 1; a missing Depth is
 * taken as 1, infinity refused with 403 as RFC 4918 allows), GET, HEAD and OPTIONS — every
 * method that would write answers 405.
 *
 * Our own few lines rather than a library: the maintained WebDAV servers for Node are whole
 * read-write file servers (locking, PUT, MOVE, a storage layer to write against); a read-only
 * tree needs a multistatus of a few properties and GET, and here every byte path stays the one
 * the browser pages use (the same checks, the same bounded streams).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { redact } from '../core/redact.js';
import { sendFile, type Outgoing } from './content.js';
import { responseSink, securityHeaders, send, sendText } from './http.js';
import { BadPath, encodeSegment, segmentBytes, type Item, type Library } from './library.js';

const READ = 'OPTIONS, GET, HEAD, PROPFIND';
const BODY_LIMIT = 64 * 1024;

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const httpDate = (ms: number) => new Date(ms).toUTCString();

interface Prop {
  href: string;
  name: string;
  dir: boolean;
  size?: number;
  mtimeMs?: number;
  etag?: string;
}

function response(p: Prop): string {
  const props = [
    `<D:displayname>${xml(p.name)}</D:displayname>`,
    p.dir ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>',
    p.mtimeMs !== undefined ? `<D:getlastmodified>${httpDate(p.mtimeMs)}</D:getlastmodified><D:creationdate>${new Date(p.mtimeMs).toISOString()}</D:creationdate>` : '',
    !p.dir && p.size !== undefined ? `<D:getcontentlength>${p.size}</D:getcontentlength>` : '',
    !p.dir ? '<D:getcontenttype>application/octet-stream</D:getcontenttype>' : '',
    p.etag ? `<D:getetag>"${xml(p.etag)}"</D:getetag>` : '',
  ].join('');
  return `<D:response><D:href>${xml(p.href)}</D:href><D:propstat><D:prop>${props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n`;
}

function itemProp(base: string, it: Item): Prop | undefined {
  if (it.child.type === 'unknown' || it.entry.kind === 'symlink') return undefined;
  const dir = it.entry.kind === 'dir';
  return {
    href: `${base}${encodeSegment(it.bytes)}${dir ? '/' : ''}`,
    name: it.bytes.toString('utf8'),
    dir,
    size: it.size,
    mtimeMs: it.entry.mtimeNs === undefined ? undefined : Number(it.entry.mtimeNs / 1_000_000n),
    etag: dir || !it.child.ro_uri ? undefined : redact(it.child.ro_uri).replace('cap#', ''),
  };
}

/** Reads (and drops) a request body, refusing one past the limit. */
async function drain(req: IncomingMessage): Promise<boolean> {
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > BODY_LIMIT) return false;
  }
  return true;
}

export async function dav(req: IncomingMessage, res: ServerResponse, lib: Library, parts: string[], signal: AbortSignal, idleMs: number): Promise<void> {
  const method = req.method ?? 'GET';
  res.setHeader('DAV', '1');
  res.setHeader('MS-Author-Via', 'DAV');
  if (method === 'OPTIONS') {
    res.setHeader('Allow', READ);
    return send(res, 200, 'text/plain; charset=utf-8', '');
  }
  if (!['GET', 'HEAD', 'PROPFIND'].includes(method)) {
    res.setHeader('Allow', READ);
    return sendText(res, 405, `${method}: this WebDAV share is read-only`);
  }
  const trailing = parts.length > 0 && parts.at(-1) === '';
  const raw = parts.filter((p, i) => p !== '' || i < parts.length - 1);
  let segs: Buffer[];
  try {
    segs = segmentBytes(raw);
  } catch (e) {
    if (e instanceof BadPath) return sendText(res, 400, e.message);
    throw e;
  }
  const base = `/dav/${raw.slice(0, Math.max(0, raw.length)).map((_, i) => encodeSegment(segs[i]!)).join('/')}`;
  const self = base.endsWith('/') ? base : `${base}/`;
  const depth = req.headers.depth ?? '1';
  if (method === 'PROPFIND') {
    if (depth !== '0' && depth !== '1') {
      res.setHeader('Content-Type', 'application/xml; charset=utf-8');
      return send(res, 403, 'application/xml; charset=utf-8', '<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n');
    }
    if (!(await drain(req))) return sendText(res, 413, 'PROPFIND: the request body is too large');
  }
  // What the path names: the root, a backup name, a generation folder, or a path inside one.
  let selfProp: Prop;
  let children: ((write: (p: Prop) => Promise<void>) => Promise<void>) | undefined;
  const all = await lib.all();
  if (segs.length === 0) {
    selfProp = { href: '/dav/', name: 'lafs-backup', dir: true };
    children = async (w) => {
      for (const s of all.values()) await w({ href: `/dav/${encodeSegment(Buffer.from(s.name))}/`, name: s.name, dir: true, mtimeMs: (s.gens[0]?.ref.time ?? 0) * 1000 || undefined });
    };
  } else {
    const s = all.get(segs[0]!.toString('utf8'));
    if (!s) return sendText(res, 404, 'no backup of that name');
    if (segs.length === 1) {
      selfProp = { href: self, name: s.name, dir: true };
      children = async (w) => {
        const folders = [{ folder: 'latest', g: s.gens[0] }, ...s.gens.map((g) => ({ folder: g.folder, g }))];
        for (const { folder, g } of folders) if (g) await w({ href: `${self}${encodeSegment(Buffer.from(folder))}/`, name: folder, dir: true, mtimeMs: g.ref.time === null ? undefined : g.ref.time * 1000 });
      };
    } else {
      const gen = await lib.generation(s.name, segs[1]!.toString('utf8'));
      if (!gen) return sendText(res, 404, 'no such generation');
      const it = await lib.resolve(gen.ref.cap, segs.slice(2), signal);
      if (it === undefined || (it && (it.child.type === 'unknown' || it.entry.kind === 'symlink'))) return sendText(res, 404, 'not in this backup');
      if (it && it.entry.kind !== 'dir') {
        if (method !== 'PROPFIND') {
          const out: Outgoing = { lib, res, signal, idleMs, head: method === 'HEAD' };
          return sendFile(out, it, segs.slice(2).map((b) => b.toString('utf8')).join('/'), 'download');
        }
        selfProp = { ...itemProp('', it)!, href: base };
      } else {
        const dircap = it === null ? gen.ref.cap : it.child.ro_uri!;
        selfProp = it ? { ...itemProp('', it)!, href: self } : { href: self, name: gen.folder, dir: true, mtimeMs: gen.ref.time === null ? undefined : gen.ref.time * 1000 };
        children = async (w) => {
          for (let from = 0; ; from += 1000) {
            const { total, items } = await lib.items(dircap, from, 1000);
            for (const item of items) {
              const p = itemProp(self, item);
              if (p) await w(p);
            }
            if (from + 1000 >= total) break;
          }
        };
      }
    }
  }
  if (method !== 'PROPFIND') {
    if (!trailing && segs.length) {
      res.setHeader('Location', self);
      return sendText(res, 301, 'a folder');
    }
    return sendText(res, 200, 'This is a read-only WebDAV folder of lafs-backup: mount it (see the README, "Browse in a browser") rather than opening it here.');
  }
  securityHeaders(res);
  res.statusCode = 207;
  res.setHeader('Content-Type', 'application/xml; charset=utf-8');
  const sink = responseSink(res, signal, idleMs);
  const write = (s: string) => sink(Buffer.from(s));
  try {
    await write(`<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">\n${response(selfProp)}`);
    if (depth === '1' && children) await children((p) => write(response(p)));
    await write('</D:multistatus>\n');
    res.end();
  } catch {
    res.destroy();
  }
}
