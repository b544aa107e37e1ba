/**
 * `diff`: two trees — backups, or a backup and a local directory — compared by path: what was
 * added, removed, or changed (contents, type, and each metadata field).
 *
 * Backups: a subdirectory with the same cap on both sides is the same tree and is not opened.
 * Contents: two backups compare caps (downloading both only when their encodings differ); a
 * backup and a local file compare by mtime and size first (as rsync does), downloading and
 * comparing the bytes when that quick check fails — or always, with `checksum`.
 *
 * A backup side's directories reached again through a cap walked before count against its
 * revisit budget (tree.ts), as in restore and `ls -R`. On a local side, the temporary files a
 * killed restore left (`.lafs-restore-…`) are not differences: they are not listed as added.
 * Nor is what a backup of that directory would leave out: a local side is read through the
 * configured filters and excludes (scan/select.ts, as phase 1's walk), with the directory given
 * as the source.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { metadataReaders } from '../meta/read.js';
import type { TahoeClient } from '../tahoe/client.js';
import { childName } from '../core/child.js';
import { createUnxz } from '../core/xz.js';
import { interpret, isRestoreTemp, type EntryInfo } from './entry-info.js';
import { byNameBytes, RevisitBudget } from './tree.js';
import { log } from '../log.js';
import type { Selector } from '../scan/select.js';

export interface Side {
  kind: 'backup' | 'local';
  /** backup: the dircap; local: the directory. */
  root: string;
}

interface View {
  info: EntryInfo;
  /** backup: the node's cap; local: the absolute path (its bytes as latin1). */
  ref: string;
  size?: number;
  /** local: dev:ino (a directory's identity, for cycles through bind mounts). */
  id?: string;
}

function localId(path: string): string {
  const st = lstatSync(Buffer.from(path, 'latin1'), { bigint: true });
  return `${st.dev}:${st.ino}`;
}


const FIELDS: (keyof EntryInfo)[] = ['mode', 'uid', 'gid', 'mtimeNs', 'acls', 'caps', 'xattrs'];

/**
 * mtimes agree within a microsecond: a backup records nanoseconds and restore sets them, but
 * a filesystem may keep less (and a backup from another tool may carry a float).
 */
export function sameMtime(a: bigint | undefined, b: bigint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const d = a - b;
  return d < 1000n && d > -1000n;
}
const FIELD_NAMES: Partial<Record<keyof EntryInfo, string>> = { mtimeNs: 'mtime' };

/** What the walk finds, as it finds it: `+` added, `-` removed, `M` changed (with what). */
export type DiffEvent = { kind: '+' | '-'; path: string } | { kind: 'M'; path: string; what: string[] };

/** One pair of directories being compared: the merged names, and where the walk is in them. */
interface Frame {
  path: string;
  names: string[];
  la: Map<string, View>;
  lb: Map<string, View>;
  i: number;
  /** Each side's directory identity (backup: its cap; local: dev:ino): for cycles. */
  ids: [string, string];
  /** Each side's directory was reached through a cap walked before (here or above). */
  again: [boolean, boolean];
}

export class Differ {
  /** Directories not entered because they contain themselves (exit 3). */
  cycles = 0;

  /** One budget per side (a local side never uses its own). */
  private readonly revisits: [RevisitBudget, RevisitBudget];
  /** A local side's metadata readers (a warning about the whole diff is given once). */
  private readonly meta = metadataReaders();

  constructor(
    private readonly client: TahoeClient,
    private readonly checksum: boolean,
    revisits: (() => RevisitBudget) = () => new RevisitBudget(),
    /** What a backup leaves out: applied to a local side (undefined: everything is compared). */
    private readonly select?: Selector,
  ) {
    this.revisits = [revisits(), revisits()];
  }

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
    const dir = Buffer.from(`${ref}/`, 'latin1');
    const names = readdirSync(dir.subarray(0, -1), { encoding: 'buffer' });
    const select = this.select;
    // The directory's path below the local root, as the walk matches it (names as UTF-8 text).
    const rel = select && dir.subarray(Buffer.from(`${side.root}/`, 'latin1').length, -1).toString('utf8');
    if (select && rel) {
      // Contents a backup leaves out: a marked directory's, another file system's (the source itself never is).
      if (select.oneFileSystem && lstatSync(dir.subarray(0, -1), { bigint: true }).dev !== this.rootDev(side)) return out;
      if (select.markedBy(names, dir.subarray(0, -1)) !== undefined) return out;
    }
    for (const nameBytes of names) {
      const abs = Buffer.concat([dir, nameBytes]);
      const st = lstatSync(abs, { bigint: true });
      if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) continue;
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
      if (select?.byPath && select.leftOut(rel ? `${rel}/${nameBytes.toString('utf8')}` : nameBytes.toString('utf8'), kind === 'dir')) continue;
      const meta = kind === 'symlink' ? {} : this.meta.readAclsAndCaps(abs, lstatSync(abs));
      const info: EntryInfo = { kind, nameBytes, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs };
      if (kind !== 'symlink') info.mode = Number(st.mode) & 0o7777;
      if (meta.acls) info.acls = meta.acls;
      if (meta.caps) info.caps = meta.caps.replace(/;/g, ' ');
      const x = this.meta.readUserXattrs(abs, st);
      if (x) info.xattrs = x;
      // Local names of any bytes: named as the backup names them (escaped, when not UTF-8).
      out.set(childName(nameBytes).name, { info, ref: abs.toString('latin1'), size: Number(st.size), id: `${st.dev}:${st.ino}` });
    }
    return out;
  }

  private readonly rootDevs = new Map<string, bigint>();

  /** The device of a local side's root (for one_file_system). */
  private rootDev(side: Side): bigint {
    let dev = this.rootDevs.get(side.root);
    if (dev === undefined) this.rootDevs.set(side.root, (dev = lstatSync(Buffer.from(side.root, 'latin1'), { bigint: true }).dev));
    return dev;
  }

  /**
   * Compares the two trees, depth first (names in byte order, a directory before what is in
   * it), telling `emit` each difference as it is found: memory is the listings on the current
   * path, whatever the size of the trees or of the difference. A directory already on its
   * side's path (a mutable directory linked into itself) is not entered again.
   */
  async compare(a: Side, b: Side, emit: (e: DiffEvent) => void | Promise<void>): Promise<void> {
    if (a.kind === 'backup' && b.kind === 'backup' && a.root === b.root) return;
    const rootId = (s: Side) => (s.kind === 'backup' ? s.root : localId(s.root));
    const stack: Frame[] = [await this.frame(a, a.root, b, b.root, '', [rootId(a), rootId(b)], [false, false])];
    const onPath = (side: 0 | 1, id: string) => stack.some((f) => f.ids[side] === id);
    while (stack.length) {
      const f = stack[stack.length - 1]!;
      if (f.i >= f.names.length) {
        stack.pop();
        continue;
      }
      const name = f.names[f.i++]!;
      const p = f.path ? `${f.path}/${name}` : name;
      const va = f.la.get(name);
      const vb = f.lb.get(name);
      // What a killed restore left behind is not part of the tree.
      if ((!vb && a.kind === 'local' && va!.info.kind !== 'dir' && isRestoreTemp(name)) || (!va && b.kind === 'local' && vb!.info.kind !== 'dir' && isRestoreTemp(name))) continue;
      if (!vb) await emit({ kind: '-', path: va!.info.kind === 'dir' ? `${p}/` : p });
      else if (!va) await emit({ kind: '+', path: vb.info.kind === 'dir' ? `${p}/` : p });
      else {
        const what = await this.entry(a, va, b, vb);
        const bothDirs = va.info.kind === 'dir' && vb.info.kind === 'dir';
        if (what.length) await emit({ kind: 'M', path: bothDirs ? `${p}/` : p, what });
        if (!bothDirs) continue;
        // A subdirectory with the same cap on both sides is the same tree: not opened.
        if (a.kind === 'backup' && b.kind === 'backup' && va.ref === vb.ref) continue;
        const ids: [string, string] = [va.id ?? va.ref, vb.id ?? vb.ref];
        if (onPath(0, ids[0]) || onPath(1, ids[1])) {
          this.cycles++;
          log.warn(`${JSON.stringify(p)} is a directory that contains itself (a cycle); not entered again`);
          continue;
        }
        stack.push(await this.frame(a, va.ref, b, vb.ref, p, ids, f.again));
      }
    }
  }

  private async frame(a: Side, aRef: string, b: Side, bRef: string, path: string, ids: [string, string], above: [boolean, boolean]): Promise<Frame> {
    // Entered before (on a backup side): what its listing holds is reached again.
    const again: [boolean, boolean] = [a.kind === 'backup' && (this.revisits[0].enter(aRef) || above[0]), b.kind === 'backup' && (this.revisits[1].enter(bRef) || above[1])];
    const [la, lb] = await Promise.all([this.list(a, aRef, path), this.list(b, bRef, path)]);
    if (again[0]) this.revisits[0].count(la.size, path);
    if (again[1]) this.revisits[1].count(lb.size, path);
    const names = [...new Set([...la.keys(), ...lb.keys()])].sort(byNameBytes);
    return { path, names, la, lb, i: 0, ids, again };
  }

  /** What differs between two entries of one name (their contents compared when needed). */
  private async entry(a: Side, va: View, b: Side, vb: View): Promise<string[]> {
    const what: string[] = [];
    if (va.info.kind !== vb.info.kind) return ['type'];
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
    return what;
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
