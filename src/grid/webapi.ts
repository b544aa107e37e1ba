/**
 * The subset of the Tahoe-LAFS web API the embedded grid speaks, with a real gateway's status
 * codes, content types and JSON shapes (see test/fixtures/tahoe-webapi/).
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { b32decode, b32encode } from '../tahoe/base32.js';
import { tryParseCap } from '../tahoe/caps.js';
import { packChildren, type PackedChild } from './dirnode.js';
import { chkIds, LIT_THRESHOLD, newMutableIds, readKeyFor } from './ids.js';
import { dirChildren, isDir, readable, renderNode, resolve, Unrecoverable, type Resolved } from './nodes.js';
import { pyDumps } from './pyjson.js';
import {
  answer,
  answerCap,
  exception,
  htmlError,
  NO_SHARES_TEXT,
  plainError,
  readBody,
  unhappyUpload,
  UNRECOVERABLE_MUTABLE_TEXT,
} from './respond.js';
import { LEASE_SECONDS, type GridState, type StoredObject } from './state.js';

type Req = IncomingMessage;
type Res = ServerResponse;

const now = () => Date.now() / 1000;

function newObject(si: string, kind: 'file' | 'dir', size: number, placement: number[][]): StoredObject {
  return { si, kind, size, placement, leaseExpires: Math.floor(now()) + LEASE_SECONDS, leaseRenewals: 0 };
}

/**
 * Stores immutable content, or finds it already stored (convergence: the same bytes give the
 * same cap, and missing shares are placed again). `kept` says whether `data` was taken.
 */
function storeImmutable(
  state: GridState,
  kind: 'file' | 'dir',
  hash: Buffer,
  size: number,
  data: Buffer | { tmpFile: string },
): { cap?: string; kept: boolean } {
  const ids = chkIds(state.secret, kind, hash);
  const existing = state.objects.get(ids.si);
  let kept = false;
  if (existing) {
    state.repairPlacement(existing.placement);
    if (!state.intact(ids.si, existing.size)) {
      // Its bytes were lost (a blob removed under --dir): uploading them again restores them.
      state.putBlob(ids.si, data);
      kept = true;
      state.changed();
    }
  } else {
    const placement = state.freshPlacement();
    if (!placement) return { kept };
    state.putBlob(ids.si, data);
    kept = true;
    state.objects.set(ids.si, newObject(ids.si, kind, size, placement));
  }
  state.changed();
  const { needed, total } = state.shape;
  return { cap: `URI:${kind === 'file' ? 'CHK' : 'DIR2-CHK'}:${ids.key}:${ids.ueb}:${needed}:${total}:${size}`, kept };
}

function unhappy(req: Req, res: Res, state: GridState): void {
  unhappyUpload(req, res, state.liveServers().length, state.shape);
}

/** `PUT /uri`: streamed upload of unknown length. */
export async function putUri(state: GridState, req: Req, res: Res): Promise<void> {
  state.stats.put_uri++;
  state.events.emit('upload-start');
  const hash = createHash('sha256');
  const tmp = state.tmpPath(`up-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const file = tmp ? createWriteStream(tmp, { mode: 0o600 }) : undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      state.stats.bytes_uploaded += chunk.length;
      // Memory mode keeps every chunk; dir mode keeps only what could still become a LIT cap.
      if (!file || size <= LIT_THRESHOLD) chunks.push(chunk);
      if (file && !file.write(chunk)) await once(file, 'drain');
    }
  } catch {
    file?.destroy();
    if (tmp) await unlink(tmp).catch(() => {});
    return; // the client went away mid-upload
  }
  if (file) {
    file.end();
    await once(file, 'close');
  }
  if (size <= LIT_THRESHOLD) {
    if (tmp) await unlink(tmp).catch(() => {});
    const lit = `URI:LIT:${b32encode(Buffer.concat(chunks))}`;
    state.events.emit('upload', lit, size);
    answerCap(res, lit);
    return;
  }
  const { cap, kept } = storeImmutable(state, 'file', hash.digest(), size, tmp ? { tmpFile: tmp } : Buffer.concat(chunks));
  if (tmp && !kept) await unlink(tmp).catch(() => {});
  if (!cap) return unhappy(req, res, state);
  state.events.emit('upload', cap, size);
  answerCap(res, cap);
}

/** `POST /uri?t=mkdir-immutable`. */
export async function mkdirImmutable(state: GridState, req: Req, res: Res): Promise<void> {
  state.stats.mkdir_immutable++;
  const body = (await readBody(req)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    return exception(req, res, `json.decoder.JSONDecodeError: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return exception(req, res, `builtins.AttributeError: '${Array.isArray(parsed) ? 'list' : typeof parsed}' object has no attribute 'items'`);
  }
  const children: PackedChild[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!Array.isArray(value) || value.length !== 2 || typeof value[1] !== 'object' || value[1] === null) {
      return exception(req, res, `builtins.ValueError: bad child description for '${name}'`);
    }
    const props = value[1] as { ro_uri?: unknown; rw_uri?: unknown; metadata?: unknown };
    const metadata = props.metadata ?? {};
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      return exception(req, res, `builtins.AssertionError: precondition: 'directory creation requires metadata to be a dict, not None' ${typeof metadata}`);
    }
    const rw = typeof props.rw_uri === 'string' ? props.rw_uri : undefined;
    const ro = typeof props.ro_uri === 'string' ? props.ro_uri : undefined;
    const text = ro ?? rw ?? '';
    const cap = tryParseCap(text);
    if (rw || (cap && !cap.isImmutable)) {
      return plainError(res, 400, `MustBeDeepImmutableError: a cap passed to this operation for the child named '${name}', needed to be immutable but was not. Either the cap is being added to an immutable directory, or it was originally retrieved from an immutable directory as an unknown cap.`);
    }
    if (text.startsWith('URI:') && !cap) {
      return exception(req, res, `allmydata.uri.BadURIError: '${text.slice(0, 12)}…' doesn't look like a cap`);
    }
    children.push({ name, ro: text, metadata: metadata as Record<string, unknown> });
  }
  const packed = packChildren(children);
  if (packed.length <= LIT_THRESHOLD) return answerCap(res, `URI:DIR2-LIT:${b32encode(packed)}`);
  const hash = createHash('sha256').update(packed).digest();
  const { cap } = storeImmutable(state, 'dir', hash, packed.length, packed);
  if (!cap) return unhappy(req, res, state);
  answerCap(res, cap);
}

/** `POST /uri?t=mkdir`: a new mutable directory. */
export function mkdirMutable(state: GridState, req: Req, res: Res): void {
  state.stats.mkdir++;
  const placement = state.freshPlacement();
  if (!placement) return unhappy(req, res, state);
  const ids = newMutableIds();
  state.mutables.set(ids.si, { ...ids, seq: 1, children: {}, placement, leaseExpires: Math.floor(now()) + LEASE_SECONDS, leaseRenewals: 0 });
  state.changed();
  answerCap(res, `URI:DIR2:${ids.writekey}:${ids.fingerprint}`);
}

interface Target {
  node: Resolved;
  metadata?: Record<string, unknown>;
  viaPath: boolean;
}

/** Follows names below a directory cap; answers 404/410 itself and returns undefined then. */
export function traverse(state: GridState, res: Res, root: Resolved, names: string[]): Target | undefined {
  let node = root;
  let metadata: Record<string, unknown> | undefined;
  for (const name of names) {
    if (!isDir(node)) {
      htmlError(res, 400, 'Files have no children');
      return undefined;
    }
    let kids: PackedChild[];
    try {
      kids = dirChildren(state, node);
    } catch (e) {
      if (!(e instanceof Unrecoverable)) throw e;
      answerGoneDir(res, node, e.mutable);
      return undefined;
    }
    const kid = kids.find((k) => k.name === name);
    if (!kid) {
      htmlError(res, 404, `No such child: ${name}`);
      return undefined;
    }
    node = resolve(state, kid.ro);
    metadata = kid.metadata;
  }
  return { node, metadata, viaPath: names.length > 0 };
}

export function answerGoneDir(res: Res, node: Resolved, mutable: boolean): void {
  const etag = node.kind === 'chk-dir' ? `DIR:${node.si}-json` : undefined;
  const text = mutable ? UNRECOVERABLE_MUTABLE_TEXT : NO_SHARES_TEXT;
  answer(res, 410, 'text/html', pyDumps({ error: text }), { chunked: true, etag });
}

function etagFor(node: Resolved, suffix: string): string | undefined {
  if (node.kind === 'chk-file') return `${node.si}-${suffix}`;
  if (node.kind === 'chk-dir') return `DIR:${node.si}-${suffix}`;
  return undefined;
}

/** `GET`/`HEAD /uri/CAP[/names]` with `t=json`, `t=uri`, or a download. */
export function getNode(state: GridState, req: Req, res: Res, capText: string, names: string[], t: string | null): void {
  const root = resolve(state, capText);
  if (root.kind === 'unknown') {
    if (t === 'json') return answer(res, 200, 'text/plain', `${pyDumps(['unknown', {}], 1)}\n`);
    return plainError(res, 400, `GET unknown URI type: can only do t=info and t=json, not t=${t ?? ''}.\nUsing a webapi server that supports a later version of Tahoe may help.`);
  }
  const target = traverse(state, res, root, names);
  if (!target) return;
  const { node } = target;
  if (t === 'json') {
    state.stats.get_json++;
    if (isDir(node)) {
      let kids: PackedChild[];
      try {
        kids = dirChildren(state, node);
      } catch (e) {
        if (!(e instanceof Unrecoverable)) throw e;
        return answerGoneDir(res, node, e.mutable);
      }
      const children: Record<string, unknown> = {};
      for (const k of kids) children[k.name] = renderNode(state, resolve(state, k.ro), { asChild: true, metadata: k.metadata, rw: k.rw });
      const body = renderNode(state, node, { children });
      const etag = node.kind === 'mutable-dir' ? undefined : etagFor(node, 'json');
      return answer(res, 200, 'text/plain', `${pyDumps(body, 1)}\n`, { etag });
    }
    const body = renderNode(state, node, { metadata: target.viaPath ? (target.metadata ?? {}) : undefined });
    return answer(res, 200, 'text/plain', `${pyDumps(body, 1)}\n`, { etag: etagFor(node, 'json') });
  }
  if (t === 'uri') {
    const text = node.kind === 'unknown' ? node.text : node.cap.text;
    return answer(res, 200, 'text/plain', text, { etag: etagFor(node, 'uri') });
  }
  if (isDir(node)) {
    return answer(res, 200, 'text/html; charset=utf-8', '<html><body>A directory. Use ?t=json.</body></html>');
  }
  state.stats.download++;
  download(state, req, res, node);
}

function download(state: GridState, req: Req, res: Res, node: Resolved): void {
  let total: number;
  let source: (start: number, end: number) => NodeJS.ReadableStream | Buffer;
  if (node.kind === 'lit-file') {
    total = node.data.length;
    source = (s, e) => node.data.subarray(s, e + 1);
  } else if (node.kind === 'chk-file') {
    if (!node.obj || !readable(state, node.obj)) {
      return answer(res, 410, 'text/plain;charset=utf-8', NO_SHARES_TEXT, { etag: `${node.si}-`, headers: { 'Accept-Ranges': 'bytes' } });
    }
    total = node.obj.size;
    source = (s, e) => state.streamBlob(node.si, s, e);
  } else {
    return plainError(res, 400, 'not a file');
  }
  const headers: Record<string, string> = { 'Content-Type': 'text/plain', 'Accept-Ranges': 'bytes', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' };
  const etag = etagFor(node, '');
  if (etag && req.method !== 'HEAD') headers.ETag = etag;
  let start = 0;
  let end = total - 1;
  let status = 200;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range && total > 0) {
    start = range[1] ? Number(range[1]) : Math.max(0, total - Number(range[2]));
    end = range[1] && range[2] ? Math.min(Number(range[2]), total - 1) : total - 1;
    if (start > end) return answer(res, 416, 'text/plain;charset=utf-8', 'Requested range not satisfiable', { headers: { 'Content-Range': `bytes */${total}` } });
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
  }
  headers['Content-Length'] = String(total === 0 ? 0 : end - start + 1);
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || total === 0) return void res.end();
  const src = source(start, end);
  if (Buffer.isBuffer(src)) res.end(src);
  else src.pipe(res);
}

/** `PUT /uri/DIRCAP/NAME?t=uri`: link a cap into a mutable directory. */
export async function linkChild(state: GridState, req: Req, res: Res, capText: string, names: string[], replace: boolean): Promise<void> {
  state.stats.link++;
  const body = (await readBody(req, 1 << 16)).toString('utf8').trim();
  const parent = traverse(state, res, resolve(state, capText), names.slice(0, -1));
  if (!parent) return;
  const name = names[names.length - 1]!;
  const dir = parent.node.kind === 'mutable-dir' && parent.node.writable ? parent.node.dir : undefined;
  if (!dir) return exception(req, res, 'allmydata.mutable.common.NotWriteableError: ');
  const cap = tryParseCap(body);
  if (!cap) {
    return plainError(res, 400, `MustNotBeUnknownRWError: an operation to add a child named '${name}' to a directory was given an unknown cap in a write slot.\nUsing a webapi server that supports a later version of Tahoe may help.\n\nIf you are using the webapi directly, specifying a readcap in the read slot (ro_uri) of the JSON PROPDICT, as well as a writecap in the write slot if desired, would also work in this case.`);
  }
  const existing = dir.children[name];
  if (existing && !replace) return plainError(res, 409, 'There was already a child by that name, and you asked me to not replace it.');
  const t = now();
  const crtime = (existing?.metadata.tahoe as { linkcrtime?: number } | undefined)?.linkcrtime ?? t;
  dir.children[name] = { ...childCaps(state, body), metadata: { ...(existing?.metadata ?? {}), tahoe: { linkcrtime: crtime, linkmotime: t } } };
  dir.seq++;
  state.changed();
  answerCap(res, body);
}

function childCaps(state: GridState, text: string): { ro?: string; rw?: string } {
  const r = resolve(state, text);
  if (r.kind === 'mutable-dir' && r.writable) {
    const readkey = b32encode(readKeyFor(b32decode(text.split(':')[2]!)));
    return { rw: text, ro: `URI:DIR2-RO:${readkey}:${r.fingerprint}` };
  }
  return { ro: text };
}

/** `POST /uri/DIRCAP?t=set_children`. */
export async function setChildren(state: GridState, req: Req, res: Res, capText: string, names: string[]): Promise<void> {
  const target = traverse(state, res, resolve(state, capText), names);
  if (!target) return;
  const dir = target.node.kind === 'mutable-dir' && target.node.writable ? target.node.dir : undefined;
  if (!dir) return exception(req, res, 'allmydata.mutable.common.NotWriteableError: ');
  let kids: Record<string, [string, { ro_uri?: string; rw_uri?: string; metadata?: Record<string, unknown> }]>;
  try {
    kids = JSON.parse((await readBody(req)).toString('utf8'));
  } catch (e) {
    return exception(req, res, `json.decoder.JSONDecodeError: ${(e as Error).message}`);
  }
  const t = now();
  for (const [name, [, props]] of Object.entries(kids)) {
    const existing = dir.children[name];
    const crtime = (existing?.metadata.tahoe as { linkcrtime?: number } | undefined)?.linkcrtime ?? t;
    dir.children[name] = { ...childCaps(state, props.rw_uri ?? props.ro_uri ?? ''), metadata: { ...(props.metadata ?? {}), tahoe: { linkcrtime: crtime, linkmotime: t } } };
  }
  dir.seq++;
  state.changed();
  answer(res, 200, 'text/html', 'Okay so I did it.', { chunked: true });
}

/** `DELETE /uri/DIRCAP/NAME`. */
export function unlinkChild(state: GridState, req: Req, res: Res, capText: string, names: string[]): void {
  state.stats.unlink++;
  const parent = traverse(state, res, resolve(state, capText), names.slice(0, -1));
  if (!parent) return;
  const name = names[names.length - 1]!;
  const dir = parent.node.kind === 'mutable-dir' && parent.node.writable ? parent.node.dir : undefined;
  if (!dir) return exception(req, res, 'allmydata.mutable.common.NotWriteableError: ');
  const existing = dir.children[name];
  if (!existing) return htmlError(res, 404, `No such child: ${name}`);
  delete dir.children[name];
  dir.seq++;
  state.changed();
  answerCap(res, existing.rw ?? existing.ro ?? '');
}
