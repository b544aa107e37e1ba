/**
 * A tree described entry by entry — what a restore or an extracted archive must give back:
 * type, owner, mtime to the ns, mode, symlink target, file contents (hashed) and extended
 * attributes (ACLs, capabilities, user xattrs) as their raw bytes, read through the addon:
 * stricter than the tools' text, and it works for names that are not UTF-8.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { getXattr, listXattrs } from '../../src/meta/xattr.js';

export interface SnapshotOptions {
  /** How a name's bytes become the key: 'hex' (default) or 'latin1' (lossless, readable for ASCII names). */
  keys?: 'hex' | 'latin1';
  /** Keep owners (default true); a non-root extraction cannot give them back. */
  owners?: boolean;
  /** Record each file's link count (hard links kept as links). */
  nlink?: boolean;
}

export function describeEntry(abs: Buffer, o: SnapshotOptions = {}): Record<string, unknown> {
  const st = lstatSync(abs, { bigint: true });
  const d: Record<string, unknown> = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file', uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs };
  if (o.nlink) d.nlink = st.isFile() ? st.nlink : undefined;
  if (o.owners === false) delete d.uid, delete d.gid;
  if (st.isSymbolicLink()) d.target = readlinkSync(abs, { encoding: 'buffer' }).toString('hex');
  else {
    d.mode = (Number(st.mode) & 0o7777).toString(8);
    d.xattrs = Object.fromEntries(listXattrs(abs).map((n) => [n.toString(), getXattr(abs, n).toString('hex')]));
  }
  if (st.isFile()) d.sha = createHash('sha256').update(readFileSync(abs)).digest('hex');
  return d;
}

/** Every entry under `root` (not root itself), by its path of encoded names, in byte order. */
export function snapshot(root: string, o: SnapshotOptions = {}): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  const visit = (dir: Buffer, rel: string) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const abs = Buffer.concat([dir, Buffer.from('/'), name]);
      const r = `${rel}/${name.toString(o.keys ?? 'hex')}`;
      out.set(r, describeEntry(abs, o));
      if (lstatSync(abs).isDirectory()) visit(abs, r);
    }
  };
  visit(Buffer.from(root), '');
  return out;
}
