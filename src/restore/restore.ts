/**
 * `restore`: a backup (or a path inside it) back into a directory, with its metadata.
 *
 * The walk: depth first, subdirectories one after the other, files and symlinks as jobs of a
 * pool with a bounded backlog, so memory is the listings on the current path plus the pool.
 * Every name of a directory is checked before anything in it is written (a name with '/' or
 * NUL, '.', '..' or empty aborts the restore, naming the parent; two children with one name on
 * disk are a conflict); a directory already on the current path is not entered again. Every
 * write goes through DEST's descriptors (dest.ts): nothing outside DEST, no symlink followed.
 * Directories get their metadata last, once their children are done.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../errors.js';
import { log, logs } from '../log.js';
import { interpret, UnsafeNameError, type EntryInfo } from '../browse/entry.js';
import type { BackupNode } from '../browse/tree.js';
import { byNameBytes, onPath, type Ancestors } from '../browse/tree.js';
import type { TahoeClient } from '../tahoe/client.js';
import { atCalls, whyUnavailable } from '../meta/xattr.js';
import { TahoeError } from '../tahoe/errors.js';
import { createUnxz } from '../core/xz.js';
import { Pool } from '../core/pool.js';
import { applyMeta } from './apply.js';
import { atDest, atDestAsync, Dest, EntryError, fdSink } from './dest.js';


export interface RestoreOptions {
  client: TahoeClient;
  /** The directory to restore into (absolute, existing). */
  dest: string;
  force: boolean;
  /** --replace-type-changes: a directory may replace a file and a file a directory (its whole tree). */
  replaceTypes?: boolean;
  dryRun: boolean;
  owner: boolean;
  concurrency: number;
  /** The restore's stop (SIGINT/SIGTERM): queued work is dropped, downloads in flight end. */
  signal?: AbortSignal;
  /** Dry run: called with each path that would be written. */
  onPlan?: (path: string, kind: EntryInfo['kind']) => void;
  /** Progress: entries finished (written, or given up on) and bytes downloaded, bumped live. */
  counts?: { objects: number; bytes: number };
}

export interface RestoreReport {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** Entries that could not be restored, or whose metadata could not be applied. */
  troubles: number;
}

const SLASH = Buffer.from('/');

/** A pass-through stream that tells `add` the size of each chunk. */
function tap(add: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      add(chunk.length);
      cb(null, chunk);
    },
  });
}

class Restorer {
  readonly report: RestoreReport = { files: 0, dirs: 0, symlinks: 0, bytes: 0, troubles: 0 };
  /** Files and symlinks being restored: `concurrency` at once, a bounded backlog. */
  private readonly limiter: Pool;
  /** DEST (undefined for a dry run): every write goes through it. */
  private readonly dest?: Dest;
  /** Hard-link groups: where the first of each was restored (undefined: it failed). */
  private readonly links = new Map<string, Promise<Buffer | undefined>>();

  constructor(private readonly o: RestoreOptions) {
    this.limiter = new Pool('restore', o.concurrency, o.signal ?? new AbortController().signal);
    const at = atCalls();
    if (!at) throw new AppError(`restore needs the native addon (its *at calls keep every write beneath DEST), which is not built: ${whyUnavailable()}; run "npm rebuild lafs-backup"`);
    if (!o.dryRun) this.dest = new Dest(at, o.dest, { force: o.force, replaceTypes: Boolean(o.replaceTypes) });
  }

  private trouble = () => {
    this.report.troubles++;
  };

  /** Restores the children of the directory `dircap` into `at`, relative to DEST (`shown` in messages). */
  async dir(dircap: string, at: Buffer, shown: string, up?: Ancestors): Promise<void> {
    const path: Ancestors = { cap: dircap, up };
    this.o.signal?.throwIfAborted();
    const info = await this.o.client.info(dircap);
    const names = Object.keys(info.children ?? {}).sort(byNameBytes);
    // Every name is checked before anything of this directory is written.
    const kids = names.map((name) => {
      const child = info.children![name]!;
      const node: BackupNode = { path: [name], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} };
      return { node, entry: interpret(node, shown) };
    });
    // Two children that map to one name on disk (a rawname equal to a sibling's name): the
    // first listed is restored, the others are conflicts — never a second write to that name
    // (a symlink written first would be followed by the second).
    const taken = new Set<string>();
    const unique = kids.filter(({ entry }) => {
      const key = entry.nameBytes.toString('latin1');
      if (!taken.has(key)) {
        taken.add(key);
        return true;
      }
      this.trouble();
      log.warn(`cannot restore ${JSON.stringify(`${shown}/${entry.nameBytes.toString('utf8')}`)}: another child of ${JSON.stringify(shown || '/')} has the same name on disk (a hostile or corrupted directory); skipped`);
      return false;
    });
    // Depth first, in bounded memory: subdirectories one after the other (their listings are
    // the only state kept, depth × width), files and symlinks as jobs of the pool — submitting
    // waits for room, so the walk never runs ahead of the downloads.
    const jobs: Promise<void>[] = [];
    let failure: { reason: unknown } | undefined;
    for (const { node, entry } of unique) {
      const rel = at.length ? Buffer.concat([at, SLASH, entry.nameBytes]) : entry.nameBytes;
      const childShown = `${shown}/${entry.nameBytes.toString('utf8')}`;
      try {
        if (entry.kind === 'dir' || this.o.dryRun) await this.child(node, entry, rel, childShown, path);
        else jobs.push((await this.limiter.submit(() => this.child(node, entry, rel, childShown, path))).done);
      } catch (e) {
        failure = { reason: e };
        break;
      }
    }
    // Every job settles (a stop or a failure reaches them all) before the first reason is thrown.
    const settled = await Promise.allSettled(jobs);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    if (failed) throw failed.reason;
  }

  async child(node: BackupNode, entry: EntryInfo, at: Buffer, shown: string, up?: Ancestors): Promise<void> {
    if (node.type === 'unknown' || !node.cap) {
      this.trouble();
      log.warn(`${JSON.stringify(shown)} is an unknown kind of node; skipped`);
      return;
    }
    if (entry.kind === 'dir' && onPath(up, node.cap)) {
      // A mutable directory linked into itself (or an ancestor): entering it again never ends.
      this.trouble();
      log.warn(`${JSON.stringify(shown)} is a directory that contains itself (a cycle); not entered again`);
      return;
    }
    if (this.o.dryRun) {
      this.o.onPlan?.(shown, entry.kind);
      if (entry.kind === 'dir') await this.dir(node.cap, at, shown, up);
      return;
    }
    try {
      if (entry.kind === 'dir') {
        atDest(() => this.dest!.ensureDir(at));
        await this.dir(node.cap, at, shown, up);
        atDest(() => this.dirMeta(at, shown, entry));
        this.report.dirs++;
      } else {
        await atDestAsync(() => (entry.kind === 'symlink' ? this.symlink(node.cap!, entry, at, shown) : this.file(node.cap!, entry, at, shown)));
      }
      if (logs('noise')) log.noise({ path: shown }, 'restored');
      if (this.o.counts) this.o.counts.objects++;
    } catch (e) {
      if (e instanceof UnsafeNameError) throw e;
      if (e instanceof TahoeError && e.tahoeCode !== 'gone' && e.tahoeCode !== 'not-found') throw e;
      if (!(e instanceof TahoeError) && !(e instanceof EntryError)) throw e;
      this.trouble();
      if (this.o.counts) this.o.counts.objects++;
      log.warn(`cannot restore ${JSON.stringify(shown)}: ${e.message}`);
    }
  }

  /**
   * A file of a hard-link group: the first of the group restored here is downloaded; the
   * others become links to it (linkat beneath DEST). If the first could not be restored, the
   * next one is downloaded instead.
   */
  private async file(cap: string, entry: EntryInfo, rel: Buffer, shown: string): Promise<void> {
    const id = entry.hardlink;
    if (id === undefined) return this.download(cap, entry, rel, shown);
    const first = this.links.get(id);
    if (first && (await first)) return this.link((await first)!, rel);
    let settle!: (v: Buffer | undefined) => void;
    this.links.set(id, new Promise((ok) => (settle = ok)));
    try {
      await this.download(cap, entry, rel, shown);
      settle(rel);
    } catch (e) {
      settle(undefined);
      this.links.delete(id);
      throw e;
    }
  }

  /** `rel` becomes another link to the restored file `target`. */
  private link(target: Buffer, rel: Buffer): void {
    this.dest!.link(target, rel);
    this.report.files++;
  }

  private async download(cap: string, entry: EntryInfo, rel: Buffer, shown: string): Promise<void> {
    let bytes = 0;
    const counts = this.o.counts;
    await this.dest!.writeFile(rel, async (fd) => {
      const body = await this.o.client.download(cap);
      // Progress counts what came down the wire (stored sizes are what the totals know).
      const stages: NodeJS.ReadWriteStream[] = counts ? [tap((n) => (counts.bytes += n))] : [];
      let undecodable: Error | undefined;
      if (entry.enc === 'xz') {
        const unxz = createUnxz();
        unxz.once('error', (e) => (undecodable = e));
        stages.push(unxz);
      }
      stages.push(tap((n) => (bytes += n)));
      await pipeline([body, ...stages, fdSink(fd)]).catch((e: unknown) => {
        // The edge says xz and the contents are not: that entry's trouble, not the restore's.
        throw undecodable ? new EntryError(`its contents are marked xz but do not decode (${undecodable.message}); skipped`) : e;
      });
      applyMeta(this.dest!.at, { fd }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
    });
    this.report.files++;
    this.report.bytes += bytes;
  }

  private async symlink(cap: string, entry: EntryInfo, rel: Buffer, shown: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of await this.o.client.download(cap)) chunks.push(c as Buffer);
    const target = Buffer.concat(chunks);
    if (this.o.counts) this.o.counts.bytes += target.length;
    this.dest!.symlink(rel, target, (dirfd, name) => applyMeta(this.dest!.at, { dirfd, name }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble }));
    this.report.symlinks++;
  }

  /** A directory's own metadata, once its children are done, through its own descriptor. */
  private dirMeta(rel: Buffer, shown: string, entry: EntryInfo): void {
    this.dest!.withDir(rel, (fd) => applyMeta(this.dest!.at, { fd }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble }));
  }

  /** Closes DEST's descriptor. */
  close(): void {
    this.dest?.close();
  }
}

/** Restores the directory `dircap`'s contents into `opts.dest`. */
export async function restoreDir(dircap: string, opts: RestoreOptions): Promise<RestoreReport> {
  const r = new Restorer(opts);
  try {
    await r.dir(dircap, Buffer.alloc(0), '');
  } finally {
    r.close();
  }
  return r.report;
}

/** Restores one entry (a file, symlink or directory reached by a path) into `opts.dest`. */
export async function restoreEntry(node: BackupNode, opts: RestoreOptions): Promise<RestoreReport> {
  const r = new Restorer(opts);
  const entry = interpret(node, node.path.slice(0, -1).join('/'));
  try {
    await r.child(node, entry, entry.nameBytes, node.path.join('/'));
  } finally {
    r.close();
  }
  return r.report;
}
