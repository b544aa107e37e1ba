/**
 * Entry cache keys. Hashes are SHA-256 over length-prefixed fields, so no two different
 * entries can build the same key material (file attributes — decimal numbers and an encoding
 * name, none containing NUL — are simply NUL-joined: as unambiguous, and cheaper per file).
 *
 * File and symlink keys start with the relative path and a NUL (no path contains one), then
 * the hash of the rest: the same information as hashing it all, but keys of one directory sit
 * together in the table, so a run — which asks in queue order — reads the B-tree almost
 * sequentially instead of jumping around it. Directory keys are bare hashes (32 bytes, so
 * never equal to a file key), not tied to a path: the same directory anywhere is one row.
 *
 *  - file: relative path, size, mtime (ns), inode, and the encoding chosen. Its ctime is kept
 *    beside the row instead (see EntryCache.checkFile): a ctime change alone triggers a local
 *    re-hash, not an upload, so chmod/chown/ACL changes cost no upload.
 *  - symlink: relative path and target.
 *  - directory: its own metadata, and for every child its name, type, cap and metadata. Names
 *    are in the key: without them a renamed file would reuse a directory with the old name.
 *  - listing (ListingKey): a directory as it is on disk — its path, then for every child its
 *    path, queue metadata and lstat identity (size, mtime, ctime, inode), and for a
 *    subdirectory its own listing key. Known before any child is looked up, it lets an
 *    unchanged directory be answered by one row.
 */
import { createHash } from 'node:crypto';
import type { Child, Metadata } from '../core/child.js';

class KeyBuilder {
  private readonly h = createHash('sha256');
  constructor(tag: string) {
    this.field(tag);
  }
  field(v: string | Buffer | bigint | number): this {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    this.h.update(len).update(b);
    return this;
  }
  digest(): Buffer {
    return this.h.digest();
  }
}

export interface FileIdentity {
  path: Buffer;
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
  /** 'none' or the xz encoding with its options, e.g. 'xz:p6:crc64'. */
  encoding: string;
}

const NUL = Buffer.from([0]);

export function fileKey(f: FileIdentity): Buffer {
  const attrs = createHash('sha256').update(`file/1\0${f.size}\0${f.mtimeNs}\0${f.ino}\0${f.encoding}`).digest();
  return Buffer.concat([f.path, NUL, attrs]);
}

export function symlinkKey(path: Buffer, target: Buffer): Buffer {
  return Buffer.concat([path, NUL, new KeyBuilder('symlink/1').field(target).digest()]);
}

/** The relative path a file or symlink key starts with. */
export function keyPath(key: Buffer): string | undefined {
  const nul = key.indexOf(0);
  return nul < 0 ? undefined : key.subarray(0, nul).toString('utf8');
}

export function dirKey(ownMetadata: Metadata, children: readonly Child[]): Buffer {
  const k = new KeyBuilder('dir/1').field(JSON.stringify(ownMetadata)).field(children.length);
  for (const c of children) k.field(c.name).field(c.type).field(c.cap).field(JSON.stringify(c.metadata));
  return k.digest();
}

/**
 * The listing key of a directory: what its children are on disk, as phase 2's lstat sees them.
 * Every child's ctime is in it, and the ctime moves with any change to a file's contents,
 * mode, owner, ACLs, capabilities or xattrs; an unchanged listing therefore has an unchanged
 * dirnode. Children are added in queue order (sorted by name), each as its path, a NUL, and a
 * fixed record (kind, uid, gid, mode, size, mtime, ctime, inode, lengths of caps and acls)
 * followed by caps, acls, and a subdirectory's own listing key — unambiguous, and one hash
 * update per child.
 *
 * `salt` is what else decides the edges and caps: the encoding settings and compression
 * policy, and whether xattrs are read. Another configuration never reuses a listing.
 */
/** Where ListingKey puts a child's four 64-bit fields before copying them into its record. */
const WIDE = new BigInt64Array(4);
const WIDE_BYTES = new Uint8Array(WIDE.buffer);
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('listing keys are written little-endian: this machine is not');
/** What a ListingKey holds before hashing it: most directories fit whole. */
const BUFFER_MAX = 64 * 1024;

export class ListingKey {
  private readonly h = createHash('sha256');
  /**
   * Children's records not yet hashed: one hash update per directory (or per 64 KiB), not one
   * per child. The same bytes go in, in the same order: the same key.
   */
  private buf: Buffer | undefined;
  private used = 0;
  /** The newest ctime among the children (a listing is trusted only once it is old enough). */
  newest = -(1n << 63n);

  constructor(salt: Buffer) {
    this.h.update('listing/1\0').update(salt);
  }

  add(
    kind: 'file' | 'symlink' | 'dir',
    e: { path: Buffer; uid: number; gid: number; mode: number | null; caps?: string; acls?: string },
    st: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint },
    sub?: Buffer,
  ): void {
    if (st.ctimeNs > this.newest) this.newest = st.ctimeNs;
    const caps = e.caps ?? '';
    const acls = e.acls ?? '';
    const need = e.path.length + 58 + 3 * (caps.length + acls.length) + 64;
    const b = this.room(need);
    let o = this.used + e.path.copy(b, this.used);
    b[o++] = 0;
    b[o++] = kind === 'file' ? 1 : kind === 'symlink' ? 2 : 3;
    o = b.writeUInt32LE(e.uid >>> 0, o);
    o = b.writeUInt32LE(e.gid >>> 0, o);
    o = b.writeInt32LE(e.mode ?? -1, o);
    // Four 64-bit fields, little-endian, two's complement (a BigInt64Array store wraps as asIntN).
    WIDE[0] = st.size;
    WIDE[1] = st.mtimeNs;
    WIDE[2] = st.ctimeNs;
    WIDE[3] = st.ino;
    b.set(WIDE_BYTES, o);
    o += 32;
    const capsAt = o + 8;
    const capsLen = caps ? b.write(caps, capsAt, 'utf8') : 0;
    const aclsLen = acls ? b.write(acls, capsAt + capsLen, 'utf8') : 0;
    o = b.writeUInt32LE(capsLen, o);
    o = b.writeUInt32LE(aclsLen, o);
    o += capsLen + aclsLen;
    // A subdirectory's listing key is its path (already here) and its hash: the hash is enough.
    if (sub) o += sub.copy(b, o, sub.length - 32);
    this.used = o;
  }

  /** The buffer with `need` bytes free at `used`: what it holds hashed first when it is full. */
  private room(need: number): Buffer {
    if (this.buf && this.used + need <= this.buf.length) return this.buf;
    this.flush();
    if (!this.buf || need > this.buf.length) this.buf = Buffer.allocUnsafeSlow(Math.min(Math.max(need, 2048) * 2, Math.max(need, BUFFER_MAX)));
    return this.buf;
  }

  private flush(): void {
    if (this.used) this.h.update(this.buf!.subarray(0, this.used));
    this.used = 0;
  }

  /**
   * The key: the directory's path, a NUL and the hash (rows of one directory sit together).
   * Its own memory, not a slice of Node's shared 8 KiB pool: a directory's key lives until its
   * parent is done (the root's children: until the end), and a small pooled slice would keep
   * its whole pool block alive — 8 KiB per directory.
   */
  key(dirPath: Buffer): Buffer {
    this.flush();
    this.buf = undefined;
    const digest = this.h.digest();
    const k = Buffer.allocUnsafeSlow(dirPath.length + 1 + digest.length);
    dirPath.copy(k, 0);
    k[dirPath.length] = 0;
    digest.copy(k, dirPath.length + 1);
    return k;
  }
}

/** What a run's listing keys depend on besides the tree (see ListingKey). */
export function listingSalt(parts: unknown): Buffer {
  return createHash('sha256')
    .update(JSON.stringify(parts, (_k, v: unknown) => (v instanceof RegExp ? `/${v.source}/${v.flags}` : typeof v === 'bigint' ? String(v) : v)))
    .digest();
}
