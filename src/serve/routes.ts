/**
 * The pages and the API (`/api/…`, the same answers as JSON): which URL gives what. Paths in
 * URLs are backup names, generation folders and the names' bytes on disk, percent-encoded
 * (library.ts checks each segment); a cap never appears in one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hitJson, type FindHit } from '../browse/find.js';
import { statsJson } from '../browse/stats.js';
import { UsageError } from '../errors.js';
import { encodePath } from '../scan/queue-codec.js';
import { CSS } from './assets.js';
import { sendArchive, sendFile, type Outgoing } from './content.js';
import { send, sendHtml, sendJson } from './http.js';
import { BadPath, genKey, PAGE, segmentBytes, type Generation, type Library } from './library.js';
import { backupsPage, diffPage, dirPage, errorPage, filePage, historyPage, searchPage } from './pages.js';
import { diff, history, historyJson, search } from './queries.js';

export interface Ctx {
  lib: Library;
  signal: AbortSignal;
  idleMs: number;
}

class NotFound extends Error {}

const nameOf = (raw: string | undefined) => {
  if (raw === undefined || raw === '') throw new NotFound('no backup named');
  return segmentBytes([raw])[0]!.toString('utf8');
};

function join(segs: readonly Buffer[]): string {
  return encodePath(Buffer.concat(segs.flatMap((s, i) => (i ? [Buffer.from('/'), s] : [s]))));
}

async function generationAt(lib: Library, rawName: string | undefined, rawFolder: string | undefined): Promise<{ name: string; gen: Generation }> {
  const name = nameOf(rawName);
  const gen = rawFolder ? await lib.generation(name, segmentBytes([rawFolder])[0]!.toString('utf8')) : undefined;
  if (!gen) throw new NotFound(`no such generation of the backup ${JSON.stringify(name)}`);
  return { name, gen };
}

/** Per root cap: the time of its last check, and what that check found wrong (absent when healthy). One read of the cache. */
function checks(lib: Library): { times: Map<string, number>; problems: Map<string, string> } {
  const times = new Map<string, number>();
  const problems = new Map<string, string>();
  for (const r of lib.reader.cache?.listBackups() ?? []) {
    if (r.tsCheck === null || r.tsCheck < (times.get(r.cap) ?? 0)) continue;
    times.set(r.cap, r.tsCheck);
    if (r.checkProblem) problems.set(r.cap, r.checkProblem);
    else problems.delete(r.cap);
  }
  return { times, problems };
}

/** Answers one GET or HEAD below / (other than /dav/). */
export async function route(req: IncomingMessage, res: ServerResponse, ctx: Ctx, parts: string[], query: URLSearchParams): Promise<void> {
  const { lib, signal } = ctx;
  const api = parts[0] === 'api';
  const [what, ...rest] = api ? parts.slice(1) : parts;
  const head = req.method === 'HEAD';
  const out: Outgoing = { lib, res, signal, idleMs: ctx.idleMs, head };
  try {
    switch (what) {
      case '':
      case undefined: {
        const wait = query.get('wait') === '1';
        const all = [...(await lib.all()).values()];
        const fig = await lib.figures(wait);
        const { times: ck, problems } = checks(lib);
        if (!api) return sendHtml(res, backupsPage(all, fig.done, fig.complete, ck, problems));
        return sendJson(res, {
          complete: fig.complete,
          backups: all.map((s) => ({
            name: s.name,
            generations: s.gens.map((g) => {
              const f = fig.done.get(genKey(g.ref));
              const c = ck.get(g.ref.cap);
              return { folder: g.folder, ...(f ? withoutCap(statsJson(f)) : { name: g.ref.name, generation: g.ref.generation, time: g.ref.time === null ? null : new Date(g.ref.time * 1000).toISOString() }), last_check: c ? new Date(c * 1000).toISOString() : null };
            }),
          })),
        });
      }
      case 'style.css':
        return send(res, 200, 'text/css; charset=utf-8', CSS, head);
      case 'b':
      case 'ls':
      case 'raw':
      case 'dl': {
        const { name, gen } = await generationAt(lib, rest[0], rest[1]);
        const segs = segmentBytes(rest.slice(2).filter((s, i, a) => s !== '' || i < a.length - 1));
        const it = await lib.resolve(gen.ref.cap, segs, signal);
        if (it === undefined || it?.child.type === 'unknown') throw new NotFound(`${JSON.stringify(join(segs))} is not in ${name} ${gen.folder}`);
        const isDir = it === null || it.entry.kind === 'dir';
        if (what === 'dl') {
          const format = query.get('format') ?? 'tar';
          if (!isDir) return sendFile(out, it, join(segs), 'download');
          if (format !== 'tar' && format !== 'zip') throw new UsageError('format: tar or zip');
          const dircap = it === null ? gen.ref.cap : it.child.ro_uri!;
          return sendArchive(out, format, dircap, it ?? undefined, it?.bytes ?? Buffer.from(`${name}-${gen.folder}`));
        }
        if (what === 'raw') {
          if (isDir || it.entry.kind !== 'file') throw new NotFound('only a file has contents to preview');
          return sendFile(out, it, join(segs), 'preview');
        }
        if (!isDir) {
          if (!api) return sendHtml(res, filePage(name, gen, segs, it));
          return sendJson(res, { name, folder: gen.folder, path: join(segs), entry: itemJson(it) });
        }
        const page = Math.max(1, Number.parseInt(query.get('page') ?? '1', 10) || 1);
        const { total, items } = await lib.items(it === null ? gen.ref.cap : it.child.ro_uri!, (page - 1) * PAGE, PAGE);
        if (!api) return sendHtml(res, dirPage(name, gen, segs, page, total, items));
        return sendJson(res, { name, folder: gen.folder, path: join(segs), total, page, pages: Math.max(1, Math.ceil(total / PAGE)), entries: items.map(itemJson) });
      }
      case 'history': {
        const name = nameOf(rest[0]);
        const segs = segmentBytes(rest.slice(1));
        if (!segs.length) throw new NotFound('give a path: /history/NAME/PATH');
        const rows = await history(lib, name, segs, signal);
        if (!rows) throw new NotFound(`no backup named ${JSON.stringify(name)}`);
        if (!api) return sendHtml(res, historyPage(name, segs, rows));
        return sendJson(res, { name, path: join(segs), history: rows.map(historyJson) });
      }
      case 'search': {
        const q = query.get('q') ?? '';
        const name = query.get('name') ?? '';
        const ignoreCase = query.get('i') === '1';
        const all = await lib.all();
        if (!q) return api ? sendJson(res, { hits: [], cut: false }) : sendHtml(res, searchPage('', [...all.keys()], name, ignoreCase, undefined));
        const r = await search(lib, q, { name: name || undefined, ignoreCase, signal });
        const folderOf = (h: FindHit) => all.get(h.backup.name)?.gens.find((g) => g.ref === h.backup)?.folder ?? '';
        if (!api) return sendHtml(res, searchPage(q, [...all.keys()], name, ignoreCase, { ...r, folderOf }));
        return sendJson(res, { hits: r.hits.map((h) => ({ folder: folderOf(h), ...hitJson(h) })), cut: r.cut });
      }
      case 'diff': {
        const all = [...(await lib.all()).values()];
        const name = query.get('name') ?? all[0]?.name ?? '';
        const [a, b] = [query.get('a') ?? '', query.get('b') ?? ''];
        let result: Awaited<ReturnType<typeof diff>> | undefined;
        if (a && b) {
          const ga = await lib.generation(name, a);
          const gb = await lib.generation(name, b);
          if (!ga || !gb) throw new NotFound(`no such generation of the backup ${JSON.stringify(name)}`);
          result = await diff(lib, ga, gb, signal);
        }
        if (!api) return sendHtml(res, diffPage(all, name, a, b, result));
        if (!result) throw new UsageError('give name, a and b (generation folders)');
        const r = result;
        const pick = (k: string) => r.events.filter((e) => e.kind === k);
        return sendJson(res, { added: pick('+').map((e) => e.path), removed: pick('-').map((e) => e.path), changed: pick('M').map((e) => ({ path: e.path, what: e.kind === 'M' ? e.what : [] })), cut: r.cut });
      }
      default:
        throw new NotFound('no such page');
    }
  } catch (e) {
    if (res.headersSent) throw e;
    const status = e instanceof NotFound ? 404 : e instanceof BadPath || e instanceof UsageError ? 400 : 0;
    if (!status) throw e;
    const text = (e as Error).message;
    if (api) return sendJson(res, { error: text }, status);
    return sendHtml(res, errorPage(status, text), status);
  }
}

function itemJson(it: import('./library.js').Item): Record<string, unknown> {
  const e = it.entry;
  const shown = encodePath(it.bytes);
  return {
    name: shown,
    ...(shown !== it.bytes.toString('utf8') ? { name_base64: it.bytes.toString('base64') } : {}),
    type: it.child.type === 'unknown' ? 'unknown' : e.kind,
    mode: e.mode === undefined ? null : e.mode.toString(8),
    uid: e.uid ?? null,
    gid: e.gid ?? null,
    size: e.kind === 'dir' ? null : (it.size ?? null),
    stored_size: e.kind === 'dir' ? null : (it.child.size ?? null),
    mtime: e.mtimeNs === undefined ? null : new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
    enc: e.enc ?? null,
  };
}

/** `stats --json`'s row without the root cap its run record holds (a cap never leaves the server). */
function withoutCap(row: Record<string, unknown>): Record<string, unknown> {
  const run = row.run as Record<string, unknown> | null;
  if (!run || typeof run !== 'object') return row;
  const { cap: _cap, ...rest } = run;
  return { ...row, run: rest };
}
