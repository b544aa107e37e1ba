/**
 * The HTML of each page, rendered on the server: no script (the policy forbids any), every name
 * and value escaped (a backed-up name is attacker-controlled: it is shown as `ls` prints it,
 * then HTML-escaped), links built from names' bytes percent-encoded — never a cap anywhere.
 */
import type { DiffEvent } from '../browse/diff.js';
import { modeString } from '../browse/entry-info.js';
import type { FindHit } from '../browse/find.js';
import type { GenerationStats } from '../browse/stats.js';
import { formatBytes } from '../progress.js';
import { encodePath } from '../scan/queue-codec.js';
import { chartSvg } from './chart.js';
import { encodeSegment, genKey, PAGE, type Generation, type Item, type Series } from './library.js';
import type { HistoryRow } from './queries.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const seg = (s: string) => encodeSegment(Buffer.from(s));
export const pathPart = (segs: readonly Buffer[]) => segs.map(encodeSegment).join('/');
/** /b (browse), /raw (preview), /dl (download), /history: name, folder, path. */
export function href(kind: 'b' | 'raw' | 'dl', name: string, folder: string, segs: readonly Buffer[] = []): string {
  return `/${kind}/${seg(name)}/${seg(folder)}/${pathPart(segs)}`;
}
export const historyHref = (name: string, segs: readonly Buffer[]) => `/history/${seg(name)}/${pathPart(segs)}`;
const shown = (segs: readonly Buffer[]) => encodePath(Buffer.concat(segs.flatMap((s, i) => (i ? [Buffer.from('/'), s] : [s]))));
const when = (t: number | null | undefined) => (t === null || t === undefined ? '–' : new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19));
const whenNs = (ns: bigint | undefined) => (ns === undefined ? '–' : new Date(Number(ns / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19));
const bytes = (n: number | undefined) => (n === undefined ? '?' : formatBytes(n));
const ago = (t: number) => {
  const d = (Date.now() / 1000 - t) / 86400;
  return d < 1 ? 'today' : `${Math.floor(d)} day${Math.floor(d) === 1 ? '' : 's'} ago`;
};

export function layout(title: string, body: string, q = ''): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="referrer" content="no-referrer"><title>${esc(title)} · lafs-backup</title><link rel="stylesheet" href="/style.css"></head><body>` +
    `<header><a class="brand" href="/">lafs-backup</a><a href="/">Backups</a><a href="/diff">Diff</a>` +
    `<form action="/search" method="get" role="search"><input name="q" type="search" placeholder="Search: *.conf, etc/**" value="${esc(q)}" aria-label="Search"><button>Search</button></form></header>` +
    `<main>${body}</main></body></html>`
  );
}

/** Leases are renewed by `check`; Tahoe's last 31 days unless the grid says otherwise. */
export const LEASE_WARN_DAYS = 21;

export function backupsPage(series: Series[], figures: Map<string, GenerationStats>, complete: boolean, checks: Map<string, number>, problems: Map<string, string> = new Map()): string {
  const parts: string[] = ['<h1>Backups</h1>'];
  if (!series.length) parts.push('<p class="warn">No backups known: the entry cache, the result file and the lafs dir name none.</p>');
  if (!complete) parts.push('<p class="muted">Counting the figures of the backups (reload to see more)…</p>');
  for (const s of series) {
    const checked = Math.max(0, ...s.gens.map((g) => checks.get(g.ref.cap) ?? 0));
    const oldest = Math.min(...s.gens.map((g) => g.ref.time ?? Infinity));
    const renewed = checked || (Number.isFinite(oldest) ? oldest : 0);
    parts.push(`<h2 id="${esc(seg(s.name))}">${esc(s.name)}</h2>`);
    // The newest generation's last check, when it found something wrong: a person must see it.
    const newest = s.gens.reduce<(typeof s.gens)[number] | undefined>((a, g) => (a && (a.ref.generation ?? 0) >= (g.ref.generation ?? 0) ? a : g), undefined);
    const problem = newest ? problems.get(newest.ref.cap) : undefined;
    if (newest && problem) {
      parts.push(`<p class="warn bad">The last check of ${esc(s.name)} (${ago(checks.get(newest.ref.cap) ?? 0)}) failed: ${esc(problem)}. Run <code>lafs-backup check -r</code> to repair, or see what it reports.</p>`);
    }
    if (renewed && (Date.now() / 1000 - renewed) / 86400 > LEASE_WARN_DAYS) {
      parts.push(`<p class="warn bad">The leases of ${esc(s.name)} were last renewed ${ago(renewed)}${checked ? ' (by check)' : ' (never checked: by its first upload)'}; Tahoe's leases last 31 days. Run <code>lafs-backup check</code>.</p>`);
    }
    const pts = s.gens.flatMap((g) => {
      const f = figures.get(genKey(g.ref));
      return f && g.ref.time !== null ? [{ time: g.ref.time, bytes: f.totals.bytes, newBytes: f.new.bytes }] : [];
    });
    if (pts.length) parts.push(chartSvg(pts, `size of ${esc(s.name)} over time`));
    parts.push('<table><thead><tr><th>Generation</th><th>Finished</th><th class="num">Files</th><th class="num">On disk</th><th class="num">Stored</th><th class="num">New that night</th><th>Last check</th><th></th></tr></thead><tbody>');
    for (const g of s.gens) {
      const f = figures.get(genKey(g.ref));
      const t = f?.totals;
      const c = checks.get(g.ref.cap);
      parts.push(
        `<tr><td><a href="${href('b', s.name, g.folder)}">${esc(g.folder)}</a>${g.ref.generation !== null ? ` <span class="muted">#${g.ref.generation}</span>` : ''}</td><td>${when(g.ref.time)}</td>` +
          `<td class="num">${t ? t.files : '…'}</td><td class="num">${t ? bytes(t.bytes) + (t.unknownSizes ? '+?' : '') : '…'}</td><td class="num">${t ? bytes(t.stored.raw + t.stored.xz) : '…'}</td>` +
          `<td class="num">${f ? `${f.new.files} files, ${bytes(f.new.bytes)}` : '…'}</td><td>${c ? `${when(c)} <span class="muted">(${ago(c)})</span>` : '<span class="muted">never</span>'}</td>` +
          `<td><a href="/diff?name=${esc(seg(s.name))}&amp;b=${esc(seg(g.folder))}">diff</a></td></tr>`,
      );
    }
    parts.push('</tbody></table>');
  }
  return layout('Backups', parts.join(''));
}

function crumbs(name: string, folder: string, segs: readonly Buffer[]): string {
  const out = [`<a href="/">Backups</a>/`, `<a href="/#${esc(seg(name))}">${esc(name)}</a>/`, `<a href="${href('b', name, folder)}">${esc(folder)}</a>/`];
  segs.forEach((s, i) => out.push(`<a href="${href('b', name, folder, segs.slice(0, i + 1))}">${esc(encodePath(s))}</a>/`));
  return `<nav class="crumbs">${out.join(' ')}</nav>`;
}

export function dirPage(name: string, gen: Generation, segs: readonly Buffer[], page: number, total: number, items: Item[]): string {
  const pages = Math.max(1, Math.ceil(total / PAGE));
  const here = href('b', name, gen.folder, segs);
  const pager =
    pages > 1
      ? `<div class="pager">${page > 1 ? `<a href="${here}?page=${page - 1}" rel="prev">← previous</a>` : ''}<span>page ${page} of ${pages} (${total} entries)</span>${page < pages ? `<a href="${here}?page=${page + 1}" rel="next">next →</a>` : ''}</div>`
      : `<p class="muted">${total} entr${total === 1 ? 'y' : 'ies'}</p>`;
  const rows = items.map((it) => {
    const to = [...segs, it.bytes];
    const link = it.child.type === 'unknown' ? esc(encodePath(it.bytes)) : `<a href="${href('b', name, gen.folder, to)}">${esc(encodePath(it.bytes))}${it.entry.kind === 'dir' ? '/' : ''}</a>`;
    const e = it.entry;
    return `<tr><td class="name">${link}</td><td class="mode">${modeString(e.kind, e.mode)}</td><td>${e.uid ?? '?'}:${e.gid ?? '?'}</td><td class="num">${e.kind === 'dir' ? '' : bytes(it.size)}</td><td>${whenNs(e.mtimeNs)}</td><td>${e.enc ?? ''}</td></tr>`;
  });
  return layout(
    `${name} ${gen.folder}`,
    `<h1>${esc(name)} <span class="muted">${esc(gen.folder)}</span></h1>${crumbs(name, gen.folder, segs)}` +
      `<div class="actions"><a class="btn" href="${href('dl', name, gen.folder, segs)}?format=tar">Download as tar</a><a class="btn" href="${href('dl', name, gen.folder, segs)}?format=zip">Download as zip</a>` +
      (segs.length ? `<a class="btn" href="${historyHref(name, segs)}">History</a>` : '') +
      `</div>${pager}<table><thead><tr><th>Name</th><th>Mode</th><th>Owner</th><th class="num">Size</th><th>Modified (UTC)</th><th>Encoding</th></tr></thead><tbody>${rows.join('')}</tbody></table>${pages > 1 ? pager : ''}`,
  );
}

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|ico)$/i;
export const imageType = (name: Buffer): string | undefined => {
  const m = IMAGE.exec(name.toString('latin1'));
  if (!m) return undefined;
  const ext = m[1]!.toLowerCase();
  return ext === 'jpg' || ext === 'jpeg' ? 'image/jpeg' : ext === 'ico' ? 'image/x-icon' : `image/${ext}`;
};

export function filePage(name: string, gen: Generation, segs: readonly Buffer[], it: Item): string {
  const e = it.entry;
  const last = segs.at(-1)!;
  const raw = href('raw', name, gen.folder, segs);
  const preview =
    e.kind !== 'file'
      ? ''
      : imageType(last)
        ? `<h2>Preview</h2><img class="preview-img" src="${raw}" alt="${esc(encodePath(last))}">`
        : `<h2>Preview <span class="muted">(as plain text, the first 256 KiB)</span></h2><iframe class="preview" sandbox src="${raw}" title="preview"></iframe>`;
  return layout(
    encodePath(last),
    `<h1>${esc(encodePath(last))}</h1>${crumbs(name, gen.folder, segs)}` +
      `<div class="actions">${e.kind === 'file' ? `<a class="btn" href="${href('dl', name, gen.folder, segs)}" download>Download</a>` : ''}<a class="btn" href="${historyHref(name, segs)}">History</a></div>` +
      `<table><tbody><tr><th>Type</th><td>${e.kind}</td></tr><tr><th>Mode</th><td class="mode">${modeString(e.kind, e.mode)}</td></tr><tr><th>Owner</th><td>${e.uid ?? '?'}:${e.gid ?? '?'}</td></tr>` +
      `<tr><th>Size on disk</th><td>${bytes(it.size)}</td></tr><tr><th>Stored</th><td>${bytes(it.child.size)}${e.enc ? ` (${e.enc})` : ''}</td></tr><tr><th>Modified (UTC)</th><td>${whenNs(e.mtimeNs)}</td></tr></tbody></table>` +
      preview,
  );
}

export function searchPage(q: string, names: string[], name: string, ignoreCase: boolean, result: { hits: FindHit[]; cut: boolean; folderOf: (h: FindHit) => string } | undefined): string {
  const opts = ['<option value="">all backups</option>', ...names.map((n) => `<option value="${esc(n)}"${n === name ? ' selected' : ''}>${esc(n)}</option>`)].join('');
  const form = `<form action="/search" method="get" class="actions"><input name="q" value="${esc(q)}" placeholder="*.conf, etc/**/*.yaml" aria-label="pattern" required><select name="name" aria-label="backup">${opts}</select><label><input type="checkbox" name="i" value="1"${ignoreCase ? ' checked' : ''}> ignore case</label><button>Search</button></form>`;
  if (!result) return layout('Search', `<h1>Search</h1>${form}<p class="muted">A pattern without a slash matches names at any depth; one with a slash, the path from the root (globs: * ? ** [..]).</p>`, q);
  const rows = result.hits.map((h) => {
    const segs = pathSegs(h);
    const folder = result.folderOf(h);
    return `<tr><td><a href="${href('b', h.backup.name, folder)}">${esc(h.backup.name)} ${esc(folder)}</a></td><td class="name"><a href="${href('b', h.backup.name, folder, segs)}">${esc(h.path)}${h.type === 'dir' ? '/' : ''}</a></td><td class="num">${h.type === 'dir' ? '' : bytes(h.size)}</td><td>${whenNs(h.mtimeNs)}</td><td><a href="${historyHref(h.backup.name, segs)}">history</a></td></tr>`;
  });
  return layout(
    `Search ${q}`,
    `<h1>Search</h1>${form}<p>${result.hits.length} found${result.cut ? ' (the first ones; narrow the pattern)' : ''}.</p>` +
      `<table><thead><tr><th>Backup</th><th>Path</th><th class="num">Size</th><th>Modified (UTC)</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    q,
  );
}

/** A hit's path as the bytes of its names on disk. */
export function pathSegs(h: FindHit): Buffer[] {
  const b = h.pathBase64 !== undefined ? Buffer.from(h.pathBase64, 'base64') : Buffer.from(h.path);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) if (i === b.length || b[i] === 0x2f) (out.push(b.subarray(start, i)), (start = i + 1));
  return out;
}

export function historyPage(name: string, segs: readonly Buffer[], rows: HistoryRow[]): string {
  const body = rows.map((r) => {
    const it = r.item;
    const cls = r.change === 'removed' ? 'tag-rm' : r.change === 'changed' ? 'tag-mod' : 'tag-add';
    const dl = it && it.entry.kind === 'file' ? `<a href="${href('dl', name, r.gen.folder, segs)}" download>download</a>` : '';
    return `<tr><td><a href="${href('b', name, r.gen.folder, it ? segs : segs.slice(0, -1))}">${esc(r.gen.folder)}</a></td><td>${when(r.gen.ref.time)}</td><td class="${cls}">${r.change}</td><td class="num">${it && it.entry.kind !== 'dir' ? bytes(it.size) : ''}</td><td>${it ? whenNs(it.entry.mtimeNs) : ''}</td><td>${dl}</td></tr>`;
  });
  return layout(
    `History of ${shown(segs)}`,
    `<h1>History of <span class="mono">${esc(shown(segs))}</span> <span class="muted">in ${esc(name)}</span></h1>` +
      `<p class="muted">Every generation where it changed (contents, size, mode, owner or mtime), newest first.</p>` +
      (rows.length ? `<table><thead><tr><th>Generation</th><th>Finished</th><th>Change</th><th class="num">Size</th><th>Modified (UTC)</th><th></th></tr></thead><tbody>${body.join('')}</tbody></table>` : '<p class="warn">No generation of this backup has this path.</p>'),
  );
}

export function diffPage(series: Series[], name: string, a: string, b: string, result: { events: DiffEvent[]; cut: boolean } | undefined): string {
  const s = series.find((x) => x.name === name) ?? series[0];
  const gens = s?.gens ?? [];
  const sel = (field: string, v: string) => `<select name="${field}" aria-label="${field}">${gens.map((g) => `<option value="${esc(g.folder)}"${g.folder === v ? ' selected' : ''}>${esc(g.folder)}</option>`).join('')}</select>`;
  const names = series.map((x) => `<option value="${esc(x.name)}"${x === s ? ' selected' : ''}>${esc(x.name)}</option>`).join('');
  const form = `<form action="/diff" method="get" class="actions"><select name="name" aria-label="backup">${names}</select>${sel('a', a || (gens[1] ?? gens[0])?.folder || '')} → ${sel('b', b || gens[0]?.folder || '')}<button>Compare</button></form>`;
  const rows = (result?.events ?? []).map((e) => {
    const cls = e.kind === '+' ? 'tag-add' : e.kind === '-' ? 'tag-rm' : 'tag-mod';
    return `<tr><td class="${cls}">${e.kind === '+' ? 'added' : e.kind === '-' ? 'removed' : 'changed'}</td><td class="name mono">${esc(e.path)}</td><td>${e.kind === 'M' ? esc(e.what.join(', ')) : ''}</td></tr>`;
  });
  return layout(
    'Diff',
    `<h1>Diff</h1>${form}` +
      (result ? `<p>${result.events.length} difference${result.events.length === 1 ? '' : 's'}${result.cut ? ' (the first ones)' : ''}.</p><table><thead><tr><th>What</th><th>Path</th><th>Changed</th></tr></thead><tbody>${rows.join('')}</tbody></table>` : ''),
  );
}

export function errorPage(status: number, text: string): string {
  return layout(String(status), `<h1>${status}</h1><p>${esc(text)}</p><p><a href="/">Back to the backups</a></p>`);
}
