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
 */
import { createHash } from 'node:crypto';
import type { Child } from '../core/entry.js';
import type { Metadata } from '../tahoe/types.js';

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
