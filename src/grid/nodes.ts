/**
 * Resolving caps against the grid's state, and rendering nodes as the gateway's `?t=json`
 * shapes (key order as a real gateway writes them).
 */
import { b32decode } from '../tahoe/base32.js';
import { tryParseCap, type Cap } from '../tahoe/caps.js';
import { unpackChildren, type PackedChild } from './dirnode.js';
import { siFromKey } from './ids.js';
import type { GridState, MutableDir, StoredObject } from './state.js';

export type Resolved =
  | { kind: 'lit-file'; cap: Cap; data: Buffer }
  | { kind: 'chk-file'; cap: Cap; si: string; ueb: string; obj?: StoredObject }
  | { kind: 'lit-dir'; cap: Cap; packed: Buffer }
  | { kind: 'chk-dir'; cap: Cap; si: string; ueb: string; obj?: StoredObject }
  | { kind: 'mutable-dir'; cap: Cap; si: string; fingerprint: string; writable: boolean; dir?: MutableDir }
  | { kind: 'unknown'; text: string };

export function resolve(state: GridState, text: string): Resolved {
  const cap = tryParseCap(text);
  if (!cap) return { kind: 'unknown', text };
  const fields = text.split(':');
  switch (cap.kind) {
    case 'LIT':
      return { kind: 'lit-file', cap, data: b32decode(fields[2]!) };
    case 'DIR2-LIT':
      return { kind: 'lit-dir', cap, packed: b32decode(fields[2]!) };
    case 'CHK':
    case 'DIR2-CHK': {
      const si = siFromKey(b32decode(fields[2]!));
      const obj = state.objects.get(si);
      return cap.kind === 'CHK'
        ? { kind: 'chk-file', cap, si, ueb: fields[3]!, obj }
        : { kind: 'chk-dir', cap, si, ueb: fields[3]!, obj };
    }
    case 'DIR2':
    case 'DIR2-RO': {
      const dir = [...state.mutables.values()].find((m) =>
        cap.kind === 'DIR2' ? m.writekey === fields[2] : m.readkey === fields[2],
      );
      return { kind: 'mutable-dir', cap, si: dir?.si ?? '', fingerprint: fields[3]!, writable: cap.kind === 'DIR2', dir };
    }
    default:
      return { kind: 'unknown', text };
  }
}

export function verifyCap(r: Resolved, state: GridState): string | undefined {
  const { needed, total } = state.shape;
  switch (r.kind) {
    case 'chk-file':
      return `URI:CHK-Verifier:${r.si}:${r.ueb}:${needed}:${total}:${r.cap.size}`;
    case 'chk-dir':
      return `URI:DIR2-CHK-Verifier:${r.si}:${r.ueb}:${needed}:${total}:${r.cap.size}`;
    case 'mutable-dir':
      return `URI:DIR2-Verifier:${r.dir?.si ?? r.si}:${r.fingerprint}`;
    default:
      return undefined;
  }
}

export function roCap(r: Resolved): string | undefined {
  if (r.kind === 'unknown') return undefined;
  if (r.kind === 'mutable-dir' && r.dir) return `URI:DIR2-RO:${r.dir.readkey}:${r.dir.fingerprint}`;
  return r.cap.text;
}

export function fileSize(r: Resolved): number {
  if (r.kind === 'lit-file') return r.data.length;
  if (r.kind === 'chk-file') return r.cap.size ?? 0;
  return 0;
}

/** Enough shares to read it: k distinct share numbers on servers that are up. */
export function recoverable(state: GridState, placement: number[][]): boolean {
  const good = new Set(placement.flatMap((shares, i) => (state.serversUp[i] ? shares : [])));
  return good.size >= state.shape.needed;
}

/** An immutable object that can be read: enough shares on live servers, and its bytes whole. */
export function readable(state: GridState, obj: { si: string; size: number; placement: number[][] }): boolean {
  return recoverable(state, obj.placement) && state.intact(obj.si, obj.size);
}

export class Unrecoverable extends Error {
  constructor(readonly mutable: boolean) {
    super(mutable ? 'unrecoverable mutable' : 'no shares');
  }
}

/** Children of a directory node; throws Unrecoverable when its shares cannot be read. */
export function dirChildren(state: GridState, r: Resolved): PackedChild[] {
  if (r.kind === 'lit-dir') return unpackChildren(r.packed);
  if (r.kind === 'chk-dir') {
    if (!r.obj || !readable(state, r.obj)) throw new Unrecoverable(false);
    return unpackChildren(state.readBlob(r.si));
  }
  if (r.kind === 'mutable-dir') {
    if (!r.dir || !recoverable(state, r.dir.placement)) throw new Unrecoverable(true);
    return Object.entries(r.dir.children).map(([name, c]) => ({
      name,
      ro: c.ro ?? c.rw ?? '',
      metadata: c.metadata,
      ...(c.rw ? { rw: c.rw } : {}),
    }));
  }
  throw new Error('not a directory');
}

export function isDir(r: Resolved): boolean {
  return r.kind === 'lit-dir' || r.kind === 'chk-dir' || r.kind === 'mutable-dir';
}

/** The `[type, {...}]` pair for a node; `metadata` placement differs for children and paths. */
export function renderNode(
  state: GridState,
  r: Resolved,
  opts: { metadata?: Record<string, unknown>; asChild?: boolean; children?: Record<string, unknown>; rw?: string },
): [string, Record<string, unknown>] {
  const v = verifyCap(r, state);
  if (r.kind === 'unknown') {
    return ['unknown', opts.asChild ? { metadata: opts.metadata ?? {}, ro_uri: `imm.${r.text}` } : {}];
  }
  if (r.kind === 'lit-file' || r.kind === 'chk-file') {
    const d: Record<string, unknown> = { mutable: false, format: 'CHK', size: fileSize(r) };
    if (opts.asChild) d.metadata = opts.metadata ?? {};
    d.ro_uri = r.cap.text;
    if (v) d.verify_uri = v;
    if (!opts.asChild && opts.metadata) d.metadata = opts.metadata;
    return ['filenode', d];
  }
  const mutable = r.kind === 'mutable-dir';
  const d: Record<string, unknown> = {};
  if (opts.asChild) {
    d.mutable = mutable;
    d.metadata = opts.metadata ?? {};
  } else {
    d.children = opts.children ?? {};
  }
  d.ro_uri = roCap(r);
  const rw = opts.rw ?? (r.kind === 'mutable-dir' && r.writable ? r.cap.text : undefined);
  if (rw) d.rw_uri = rw;
  if (v) d.verify_uri = v;
  if (!opts.asChild) d.mutable = mutable;
  return ['dirnode', d];
}
