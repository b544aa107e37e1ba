/**
 * POSIX ACLs as stored in `system.posix_acl_access` / `system.posix_acl_default`: a little-
 * endian u32 version (2), then 8-byte entries (u16 tag, u16 permissions, u32 id). As text:
 * the abbreviated form with numeric ids, entries joined by `,` — `u::rwx,u:1000:rwx,g::r-x,
 * m::rwx,o::r-x` — and default entries prefixed `d:`. Numeric ids, not names: names need not
 * mean the same thing on the machine a backup is restored to.
 */

export class AclError extends Error {}

const VERSION = 2;
const TAGS: [number, string][] = [
  [0x01, 'u'], // ACL_USER_OBJ
  [0x02, 'u'], // ACL_USER (named)
  [0x04, 'g'], // ACL_GROUP_OBJ
  [0x08, 'g'], // ACL_GROUP (named)
  [0x10, 'm'], // ACL_MASK
  [0x20, 'o'], // ACL_OTHER
];
const NAMED = new Set([0x02, 0x08]);
const UNDEFINED_ID = 0xffffffff;

export interface AclEntry {
  tag: number;
  perm: number;
  id?: number;
}

function permText(p: number): string {
  return `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;
}

export function decodeAcl(blob: Buffer): AclEntry[] {
  if (blob.length < 4 || (blob.length - 4) % 8 !== 0) throw new AclError(`malformed ACL (${blob.length} bytes)`);
  const version = blob.readUInt32LE(0);
  if (version !== VERSION) throw new AclError(`unknown ACL version ${version}`);
  const entries: AclEntry[] = [];
  for (let off = 4; off < blob.length; off += 8) {
    const tag = blob.readUInt16LE(off);
    const perm = blob.readUInt16LE(off + 2);
    const id = blob.readUInt32LE(off + 4);
    if (!TAGS.some(([t]) => t === tag)) throw new AclError(`unknown ACL entry tag 0x${tag.toString(16)}`);
    if (perm > 7) throw new AclError(`bad ACL permissions ${perm}`);
    entries.push(NAMED.has(tag) ? { tag, perm, id } : { tag, perm });
  }
  return entries;
}

/** True when the ACL says nothing the mode bits do not: owner, group and other only. */
export function isMinimal(entries: AclEntry[]): boolean {
  return entries.length === 3 && entries.every((e) => [0x01, 0x04, 0x20].includes(e.tag));
}

function sorted(entries: AclEntry[]): AclEntry[] {
  return [...entries].sort((a, b) => a.tag - b.tag || (a.id ?? 0) - (b.id ?? 0));
}

export function aclText(entries: AclEntry[], prefix = ''): string[] {
  return sorted(entries).map((e) => `${prefix}${TAGS.find(([t]) => t === e.tag)![1]}:${e.id ?? ''}:${permText(e.perm)}`);
}

/** The queue/metadata text of an entry's ACLs; undefined when there is nothing to say. */
export function aclsToText(access: Buffer | undefined, dflt: Buffer | undefined): string | undefined {
  const parts: string[] = [];
  if (access) {
    const entries = decodeAcl(access);
    if (!isMinimal(entries)) parts.push(...aclText(entries));
  }
  if (dflt) {
    const entries = decodeAcl(dflt);
    if (entries.length) parts.push(...aclText(entries, 'd:'));
  }
  return parts.length ? parts.join(',') : undefined;
}

const ENTRY = /^(d:)?([ugmo]):(\d*):([r-][w-][x-])$/;

/** Parses the text back into the two blobs (for restoring, and to check round trips). */
export function textToAcls(text: string): { access?: Buffer; default?: Buffer } {
  const access: AclEntry[] = [];
  const dflt: AclEntry[] = [];
  for (const part of text.split(',')) {
    const m = ENTRY.exec(part);
    if (!m) throw new AclError(`bad ACL entry ${JSON.stringify(part)}`);
    const [, d, kind, id, perms] = m;
    const perm = (perms![0] === 'r' ? 4 : 0) | (perms![1] === 'w' ? 2 : 0) | (perms![2] === 'x' ? 1 : 0);
    const named = id !== '';
    if (named && (kind === 'm' || kind === 'o')) throw new AclError(`bad ACL entry ${JSON.stringify(part)}`);
    const tag = kind === 'u' ? (named ? 0x02 : 0x01) : kind === 'g' ? (named ? 0x08 : 0x04) : kind === 'm' ? 0x10 : 0x20;
    (d ? dflt : access).push(named ? { tag, perm, id: Number(id) } : { tag, perm });
  }
  return { access: access.length ? encodeAcl(access) : undefined, default: dflt.length ? encodeAcl(dflt) : undefined };
}

export function encodeAcl(entries: AclEntry[]): Buffer {
  const list = sorted(entries);
  const buf = Buffer.alloc(4 + 8 * list.length);
  buf.writeUInt32LE(VERSION, 0);
  list.forEach((e, i) => {
    buf.writeUInt16LE(e.tag, 4 + 8 * i);
    buf.writeUInt16LE(e.perm, 6 + 8 * i);
    buf.writeUInt32LE(e.id ?? UNDEFINED_ID, 8 + 8 * i);
  });
  return buf;
}

/**
 * An access ACL with a mask must be consistent with the mode (the mode's group bits are the
 * mask); used when restoring. Returns the ACL's owner/mask/other bits as a mode's low 9 bits.
 */
export function modeBitsOf(entries: AclEntry[]): number {
  const get = (tag: number) => entries.find((e) => e.tag === tag)?.perm ?? 0;
  const group = entries.some((e) => e.tag === 0x10) ? get(0x10) : get(0x04);
  return (get(0x01) << 6) | (group << 3) | get(0x20);
}
