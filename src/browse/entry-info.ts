/**
 * What a directory entry of a backup says, read from its edge metadata — ours (uid, gid, mode
 * as strings, mtime "s.nnnnnnnnn", enc, caps, acls, xattrs, rawname) or `tahoe backup`'s
 * (st_mode, st_uid, st_gid as numbers, mtime as a float). Values that are not what they should
 * be are ignored, never trusted: a directory may be hostile or corrupted.
 */
import type { EntryKind, Metadata } from '../core/child.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../core/file-type.js';
import { parseMtime } from '../core/mtime.js';
import { AppError } from '../errors.js';
import type { BackupNode } from './tree.js';


export interface EntryInfo {
  kind: EntryKind;
  /** The name bytes on disk (rawname when the listed name is an escaped form). */
  nameBytes: Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeNs?: bigint;
  enc?: 'xz';
  caps?: string;
  acls?: string;
  xattrs?: Record<string, string>;
  /** Files with more than one link: the id (first link's path) shared by the group. */
  hardlink?: string;
}


function int(v: unknown, radix = 10): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && (radix === 8 ? /^[0-7]{1,7}$/ : /^\d{1,10}$/).test(v)) return parseInt(v, radix);
  return undefined;
}

/**
 * The temporary names restore writes files under before renaming them into place
 * (`.lafs-restore-` twelve hex digits, `-`, a counter in base 36). A killed restore leaves them
 * behind; the next restore into that DEST removes them, and `diff` does not count them.
 */
export const RESTORE_TEMP_PREFIX = '.lafs-restore-';
const RESTORE_TEMP = /^\.lafs-restore-[0-9a-f]{12}-[0-9a-z]+$/;

export function isRestoreTemp(name: Buffer | string): boolean {
  return RESTORE_TEMP.test(typeof name === 'string' ? name : name.toString('latin1'));
}

/** A child name that cannot be one path component is refused: it could reach outside DEST. */
export class UnsafeNameError extends AppError {}

export function checkName(name: Buffer, parent: string): void {
  if (!name.length || name.includes(0x2f) || name.includes(0) || name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) {
    throw new UnsafeNameError(`the backup directory ${JSON.stringify(parent || '/')} has a child named ${JSON.stringify(name.toString('utf8'))}: refusing it (a hostile or corrupted directory)`);
  }
}

export function interpret(node: BackupNode, parent: string): EntryInfo {
  const m: Metadata = node.metadata ?? {};
  const listed = node.path[node.path.length - 1]!;
  const raw = typeof m.rawname === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(m.rawname) ? Buffer.from(m.rawname, 'base64') : undefined;
  const nameBytes = raw ?? Buffer.from(listed, 'utf8');
  checkName(Buffer.from(listed, 'utf8'), parent);
  checkName(nameBytes, parent);
  const ours = typeof m.uid === 'string' && typeof m.gid === 'string';
  const mode = int(m.mode, 8) ?? int(m.st_mode);
  let kind: EntryKind = node.type === 'dirnode' ? 'dir' : 'file';
  // Ours: a symlink is a small file with uid and gid but no mode.
  if (kind === 'file' && ours && m.mode === undefined) kind = 'symlink';
  const info: EntryInfo = { kind, nameBytes };
  if (mode !== undefined && kind !== 'symlink') {
    const type = mode & S_IFMT;
    // Keep the permission bits; the type comes from the node itself.
    if (type === 0 || type === (kind === 'dir' ? S_IFDIR : S_IFREG)) info.mode = mode & 0o7777;
  }
  info.uid = int(m.uid) ?? int(m.st_uid);
  info.gid = int(m.gid) ?? int(m.st_gid);
  info.mtimeNs = parseMtime(m.mtime);
  if (m.enc === 'xz') info.enc = 'xz';
  if (typeof m.caps === 'string' && m.caps) info.caps = m.caps.replace(/;/g, ' ');
  if (typeof m.acls === 'string' && m.acls) info.acls = m.acls;
  if (kind === 'file' && typeof m.hardlink === 'string' && m.hardlink) info.hardlink = m.hardlink;
  if (m.xattrs && typeof m.xattrs === 'object' && !Array.isArray(m.xattrs)) {
    const x: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.xattrs as Record<string, unknown>)) if (k.startsWith('user.') && typeof v === 'string') x[k] = v;
    if (Object.keys(x).length) info.xattrs = x;
  }
  return info;
}

export function modeString(kind: EntryKind, mode: number | undefined): string {
  const t = kind === 'dir' ? 'd' : kind === 'symlink' ? 'l' : '-';
  if (kind === 'symlink') return 'lrwxrwxrwx';
  if (mode === undefined) return `${t}?????????`;
  const bits = ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'].map((c, i) => (mode & (1 << (8 - i)) ? c : '-'));
  if (mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return t + bits.join('');
}

/** Where an xz file's plaintext size may be known besides its edge (the entry cache's file rows). */
export interface SizeSource {
  of(cap: string): number | undefined;
}

/** The plaintext size an edge carries (`size`, decimal text: written with `enc: xz`); undefined when it carries none that makes sense. */
export function edgeSize(m: Metadata | undefined): number | undefined {
  const v = m?.size;
  if (typeof v === 'string' && /^\d{1,16}$/.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  return undefined;
}

/**
 * An entry's size as it is on disk: for a raw file or a symlink, its stored size (the
 * listing's); for an xz file the edge's `size`, else the entry cache's row for its cap, else
 * unknown (undefined) — never the compressed size passed off as the real one. Directories:
 * undefined.
 */
export function sizeOnDisk(node: Pick<BackupNode, 'cap' | 'size' | 'metadata'>, entry: Pick<EntryInfo, 'kind' | 'enc'>, sizes?: SizeSource): number | undefined {
  if (entry.kind === 'dir') return undefined;
  if (entry.enc !== 'xz') return node.size;
  return edgeSize(node.metadata) ?? (node.cap ? sizes?.of(node.cap) : undefined);
}
