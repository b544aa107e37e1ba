/**
 * Edge metadata: what a directory entry records about a child. Keys are always written in one
 * order — uid, gid, mode, mtime, enc, size, caps, acls, xattrs, rawname, hardlink — because a
 * gateway's dircap depends on it, and the same tree must always give the same root cap.
 *
 * Values: uid, gid, mode as strings exactly as in the queue (mode in octal; no mode for a
 * symlink), mtime as decimal seconds with nanoseconds ("1700000000.123456789"), enc "xz" for
 * compressed files with size (decimal, the plaintext's bytes) beside it — the stored size of
 * an xz file says nothing of what it unpacks to — caps and acls as in the queue, xattrs as
 * {name: base64}, and rawname (base64) only for a name that is not valid UTF-8: the child is
 * then listed under its escaped form and rawname keeps the exact bytes; hardlink, only on files
 * with more than one link, is the path (escaped as in the queue) of the first of those links in
 * the queue, the same on every member of the group: restore links the group together again.
 */
import { mtimeText } from '../core/mtime.js';
import { type QueueEntry } from '../scan/queue-codec.js';
import type { Metadata } from '../core/child.js';

export interface EdgeExtras {
  mtimeNs?: bigint;
  enc?: 'xz';
  /** With enc: the bytes of the plaintext stored. */
  size?: number;
  xattrs?: Record<string, string> | null;
  rawname?: string;
  /** Files with more than one link: the path (relative to the source) of the first in the queue. */
  hardlink?: string;
}

export function edgeMetadata(e: QueueEntry, x: EdgeExtras): Metadata {
  const m: Metadata = { uid: String(e.uid), gid: String(e.gid) };
  if (e.mode !== null) m.mode = e.mode.toString(8);
  if (x.mtimeNs !== undefined) m.mtime = mtimeText(x.mtimeNs);
  if (x.enc) {
    m.enc = x.enc;
    if (x.size !== undefined) m.size = String(x.size);
  }
  if (e.caps) m.caps = e.caps;
  if (e.acls) m.acls = e.acls;
  if (x.xattrs && Object.keys(x.xattrs).length) m.xattrs = x.xattrs;
  if (x.rawname) m.rawname = x.rawname;
  if (x.hardlink !== undefined) m.hardlink = x.hardlink;
  return m;
}
