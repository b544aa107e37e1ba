/**
 * What every stage says about entries, in one place: their kinds, the child of a directory (as the backup builds it, the cache keys it and the client sends
 * it), and the name a directory lists for a name on disk.
 */
import { encodePath } from './path-text.js';

export type EntryKind = 'file' | 'symlink' | 'dir';

/** Edge metadata as stored in a directory: string values, or nested objects (xattrs, tahoe). */
export type Metadata = Record<string, unknown>;

/** One child of an immutable directory: its listed name, node type, read cap and edge metadata. */
export interface Child {
  name: string;
  type: 'filenode' | 'dirnode';
  cap: string;
  metadata: Metadata;
  /**
   * Backups only: the cache row that holds this child exactly as it is now (a file's or
   * symlink's key; a directory's listing key). Absent when it is not cached as it is — then
   * its directory's listing is not recorded either. Never sent to the gateway.
   */
  row?: Buffer;
}

/** The child name a directory lists for these name bytes, and rawname when they are not UTF-8. */
export function childName(base: Buffer): { name: string; rawname?: string } {
  const text = base.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(base)) return { name: text };
  return { name: encodePath(base), rawname: base.toString('base64') };
}

/** The name bytes on disk of a child built by childName (rawname when there is one). */
export function childBytes(c: Child): Buffer {
  return typeof c.metadata.rawname === 'string' ? Buffer.from(c.metadata.rawname, 'base64') : Buffer.from(c.name, 'utf8');
}
