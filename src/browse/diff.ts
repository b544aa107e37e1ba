/**
 * `diff`: two trees — backups, or a backup and a local directory — compared by path: what was
 * added, removed, or changed (contents, type, and each metadata field).
 *
 * Backups: a subdirectory with the same cap on both sides is the same tree and is not opened.
 * Contents: two backups compare caps (downloading both only when their encodings differ); a
 * backup and a local file compare by mtime and size first (as rsync does), downloading and
 * comparing the bytes when that quick check fails — or always, with `checksum`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { readAclsAndCaps, readUserXattrs } from '../meta/entry.js';
import type { TahoeClient } from '../tahoe/client.js';
import { childName } from '../core/entry.js';
import { createUnxz } from '../core/xz.js';
import { interpret, type EntryInfo } from './entry.js';
import { byNameBytes } from './tree.js';

export interface Side {
  kind: 'backup' | 'local';
  /** backup: the dircap; local: the directory. */
  root: string;
}

interface View {
  info: EntryInfo;
  /** backup: the node's cap; local: the absolute path. */
  ref: string;
  size?: number;
}

export interface DiffResult {
  added: string[];
  removed: string[];
  changed: { path: string; what: string[] }[];
}

const FIELDS: (keyof EntryInfo)[] = ['mode', 'uid', 'gid', 'mtimeNs', 'acls', 'caps', 'xattrs'];

/**
 * mtimes agree within a microsecond: a backup records nanoseconds, but a restore sets times
 * through Node's utimes, which takes seconds as a double (about 0.24 µs of precision today).
 */
export function sameMtime(a: bigint | undefined, b: bigint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const d = a - b;
  return d < 1000n && d > -1000n;
}
const FIELD_NAMES: Partial<Record<keyof EntryInfo, string>> = { mtimeNs: 'mtime' };

export class Differ {
  readonly result: DiffResult = { added: [], removed: [], changed: [] };

  constructor(
    private readonly client: TahoeClient,
    private readonly checksum: boolean,
  ) {}

  private async list(side: Side, ref: string, shown: string): Promise<Map<string, View>> {
    const out = new Map<string, View>();
    if (side.kind === 'backup') {
      const info = await this.client.info(ref);
      for (const name of Object.keys(info.children ?? {})) {
        const c = info.children![name]!;
        out.set(name, { info: interpret({ path: [name], type: c.type, cap: c.ro_uri, size: c.size, metadata: c.metadata ?? {} }, shown), ref: c.ro_uri ?? '', size: c.size });
      }
      return out;
    }
    for (const nameBytes of readdirSync(Buffer.from(ref), { encoding: 'buffer' })) {
      const abs = Buffer.concat([Buffer.from(ref), Buffer.from('/'), nameBytes]);
      const st = lstatSync(abs, { bigint: true });
      if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) continue;
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
      const meta = kind === 'symlink' ? {} : readAclsAndCaps(abs, lstatSync(abs));
      const info: EntryInfo = { kind, nameBytes, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs };
      if (kind !== 'symlink') info.mode = Number(st.mode) & 0o7777;
      if (meta.acls) info.acls = meta.acls;
      if (meta.caps) info.caps = meta.caps.replace(/;/g, ' ');
      const x = readUserXattrs(abs, st);
      if (x) info.xattrs = x;
      out.set(childName(nameBytes).name, { info, ref: abs.toString('latin1'), size: Number(st.size) });
    }
    return out;
  }

  async compare(a: Side, b: Side): Promise<DiffResult> {
    await this.dirs(a, a.root, b, b.root, '');
    return this.result;
  }

  private async dirs(a: Side, aRef: string, b: Side, bRef: string, path: string): Promise<void> {
    if (a.kind === 'backup' && b.kind === 'backup' && aRef === bRef) return;
    const [la, lb] = await Promise.all([this.list(a, aRef, path), this.list(b, bRef, path)]);
    const names = [...new Set([...la.keys(), ...lb.keys()])].sort(byNameBytes);
    for (const name of names) {
      const p = path ? `${path}/${name}` : name;
      const va = la.get(name);
      const vb = lb.get(name);
      if (!vb) this.result.removed.push(va!.info.kind === 'dir' ? `${p}/` : p);
      else if (!va) this.result.added.push(vb.info.kind === 'dir' ? `${p}/` : p);
      else await this.entry(a, va, b, vb, p);
    }
  }

  private async entry(a: Side, va: View, b: Side, vb: View, path: string): Promise<void> {
    const what: string[] = [];
    if (va.info.kind !== vb.info.kind) what.push('type');
    else {
      for (const f of FIELDS) {
        if (f === 'mtimeNs') {
          if (!sameMtime(va.info.mtimeNs, vb.info.mtimeNs)) what.push('mtime');
          continue;
        }
        if (JSON.stringify(va.info[f] ?? null, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) !== JSON.stringify(vb.info[f] ?? null, (_k, v) => (typeof v === 'bigint' ? String(v) : v))) {
          what.push(FIELD_NAMES[f] ?? f);
        }
      }
      if (va.info.kind !== 'dir' && !(await this.sameContents(a, va, b, vb))) what.push(va.info.kind === 'symlink' ? 'target' : 'contents');
    }
    if (what.length) this.result.changed.push({ path: va.info.kind === 'dir' && vb.info.kind === 'dir' ? `${path}/` : path, what });
    if (va.info.kind === 'dir' && vb.info.kind === 'dir') await this.dirs(a, va.ref, b, vb.ref, path);
  }

  private async sameContents(a: Side, va: View, b: Side, vb: View): Promise<boolean> {
    if (a.kind === 'backup' && b.kind === 'backup') {
      if (va.ref === vb.ref) return true;
      if (va.info.enc === vb.info.enc) return false;
    } else if (!this.checksum) {
      const [back, local] = a.kind === 'backup' ? [va, vb] : [vb, va];
      const sameTime = back.info.mtimeNs !== undefined && sameMtime(back.info.mtimeNs, local.info.mtimeNs);
      const sameSize = back.info.enc === 'xz' || back.size === local.size;
      if (va.info.kind === 'file' && sameTime && sameSize) return true;
    }
    const [ha, hb] = await Promise.all([this.hash(a, va), this.hash(b, vb)]);
    return ha === hb;
  }

  private async hash(side: Side, v: View): Promise<string> {
    const h = createHash('sha256');
    if (side.kind === 'local') {
      const abs = Buffer.from(v.ref, 'latin1');
      if (v.info.kind === 'symlink') return h.update(readlinkSync(abs)).digest('hex');
      for await (const c of createReadStream(abs)) h.update(c as Buffer);
      return h.digest('hex');
    }
    const body = await this.client.download(v.ref);
    let stream = body;
    if (v.info.enc === 'xz') {
      const unxz = createUnxz();
      body.on('error', (e) => unxz.destroy(e));
      stream = body.pipe(unxz);
    }
    for await (const c of stream) h.update(c as Buffer);
    return h.digest('hex');
  }
}
