/**
 * `restore`: a backup (or a path inside it) back into a directory, with its metadata.
 *
 * Safety: every name of a directory is checked before anything in it is written (a name with
 * '/' or NUL, '.', '..' or empty aborts the restore, naming the parent); entries are created
 * as single names inside directories this restore made or checked with lstat, so nothing is
 * written outside DEST and no symlink is followed. A file is written to a hidden temporary name
 * (O_EXCL|O_NOFOLLOW), given its metadata, then renamed into place: a restore killed halfway
 * leaves no partial file under a real name. Directories get their mode and mtime last.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncate, openSync, readdirSync, write } from 'node:fs';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S_IFDIR, S_IFLNK, S_IFMT } from '../core/file-type.js';
import { AppError, describeErrno, errnoCode, isSystemError } from '../errors.js';
import { log, logs } from '../log.js';
import { interpret, UnsafeNameError, type EntryInfo } from '../browse/entry.js';
import type { BackupNode } from '../browse/tree.js';
import { byNameBytes, onPath, type Ancestors } from '../browse/tree.js';
import type { TahoeClient } from '../tahoe/client.js';
import { atCalls, whyUnavailable, type AtCalls } from '../meta/xattr.js';
import { TahoeError } from '../tahoe/errors.js';
import { createUnxz } from '../core/xz.js';
import { Pool } from '../core/pool.js';
import { applyMeta } from './apply.js';

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

/**
 * One entry cannot be restored (its contents do not decode, a name conflict in DEST): that
 * entry is skipped with a warning naming it (exit 3); the rest of the restore goes on.
 */
export class EntryError extends Error {}

/** Writing into DEST failed for this entry (a failed system call there): the entry's trouble. */
function atDest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw isSystemError(e) ? new EntryError(describeErrno(e)) : e;
  }
}

async function atDestAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw isSystemError(e) ? new EntryError(describeErrno(e)) : e;
  }
}


const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Writes the contents to `fd` (which stays open: its metadata is set through it afterwards),
 * by position, leaving every all-zero 4 KiB block as a hole: a sparse file comes back taking
 * the space it had (and a file of zeros takes none). The size is set at the end.
 */
function fdSink(fd: number): Writable {
  let pos = 0;
  const writeAt = (buf: Buffer, at: number, done: (e?: Error | null) => void): void => {
    if (!buf.length) return done();
    write(fd, buf, 0, buf.length, at, (e, n) => (e ? done(e) : writeAt(buf.subarray(n), at + n, done)));
  };
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const start = pos;
      pos += chunk.length;
      // Runs of data between zero blocks, each written at its place.
      const runs: [number, number][] = [];
      for (let off = 0; off < chunk.length; off += BLOCK) {
        const end = Math.min(off + BLOCK, chunk.length);
        const zero = ZEROS.compare(chunk, off, end, 0, end - off) === 0;
        if (zero) continue;
        const last = runs[runs.length - 1];
        if (last && last[1] === off) last[1] = end;
        else runs.push([off, end]);
      }
      const next = (i: number, e?: Error | null): void => {
        if (e || i === runs.length) return cb(e);
        writeAt(chunk.subarray(runs[i]![0], runs[i]![1]), start + runs[i]![0], (err) => next(i + 1, err));
      };
      next(0);
    },
    final(cb) {
      ftruncate(fd, pos, (e) => cb(e));
    },
  });
}

/** A pass-through stream that tells `add` the size of each chunk. */
function tap(add: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      add(chunk.length);
      cb(null, chunk);
    },
  });
}

const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;

class Restorer {
  readonly report: RestoreReport = { files: 0, dirs: 0, symlinks: 0, bytes: 0, troubles: 0 };
  /** Files and symlinks being restored: `concurrency` at once, a bounded backlog. */
  private readonly limiter: Pool;
  private readonly at: AtCalls;
  /** DEST, opened once; everything else is reached beneath it (-1 for a dry run). */
  private readonly root: number;
  /** Hard-link groups: where the first of each was restored (undefined: it failed). */
  private readonly links = new Map<string, Promise<Buffer | undefined>>();

  constructor(private readonly o: RestoreOptions) {
    this.limiter = new Pool('restore', o.concurrency, o.signal ?? new AbortController().signal);
    const at = atCalls();
    if (!at) throw new AppError(`restore needs the native addon (its *at calls keep every write beneath DEST), which is not built: ${whyUnavailable()}; run "npm rebuild lafs-backup"`);
    this.at = at;
    this.root = o.dryRun ? -1 : openSync(o.dest, O_DIR | constants.O_NOFOLLOW);
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
        atDest(() => this.ensureDir(at));
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

  /** The parent directory of `rel` (relative to DEST) opened beneath DEST, and `rel`'s last name. */
  private openParent(rel: Buffer): { fd: number; name: Buffer } {
    const slash = rel.lastIndexOf(0x2f);
    const parent = slash < 0 ? Buffer.alloc(0) : rel.subarray(0, slash);
    return { fd: this.at.openBeneath(this.root, parent, O_DIR), name: rel.subarray(slash + 1) };
  }

  /**
   * A directory to write into: made here, or an existing real directory. Anything else in the
   * way is replaced only with --force (a symlink), or --replace-type-changes (a file).
   */
  private ensureDir(rel: Buffer): void {
    const p = this.openParent(rel);
    try {
      try {
        this.at.mkdirat(p.fd, p.name, 0o700);
        return;
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const type = this.at.fstatatMode(p.fd, p.name, AT_SYMLINK_NOFOLLOW) & S_IFMT;
      if (type === S_IFDIR) return;
      if (!this.o.force) throw new EntryError('it exists in DEST and is not a directory (--force replaces it)');
      // A symlink holds no data and is replaced with --force; a file only with --replace-type-changes.
      if (type !== S_IFLNK && !this.o.replaceTypes) throw new EntryError('a file is in the way of this directory in DEST; not replaced (--replace-type-changes replaces it)');
      this.at.unlinkat(p.fd, p.name, 0);
      this.at.mkdirat(p.fd, p.name, 0o700);
    } finally {
      closeSync(p.fd);
    }
  }

  private tempName(): Buffer {
    return Buffer.from(`.lafs-restore-${randomBytes(6).toString('hex')}`);
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

  /** `rel` becomes another link to the restored file `target` (both relative to DEST). */
  private link(target: Buffer, rel: Buffer): void {
    const from = this.openParent(target);
    try {
      const p = this.openParent(rel);
      const tmp = this.tempName();
      try {
        this.at.linkat(from.fd, from.name, p.fd, tmp, 0);
        this.replaceWith(p.fd, tmp, p.name);
      } catch (e) {
        this.removeQuietly(p.fd, tmp);
        throw e;
      } finally {
        closeSync(p.fd);
      }
    } finally {
      closeSync(from.fd);
    }
    this.report.files++;
  }

  private async download(cap: string, entry: EntryInfo, rel: Buffer, shown: string): Promise<void> {
    const p = this.openParent(rel);
    const tmp = this.tempName();
    let fd: number | undefined;
    let bytes = 0;
    const counts = this.o.counts;
    try {
      fd = this.at.openBeneath(p.fd, tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
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
      applyMeta(this.at, { fd }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
      closeSync(fd);
      fd = undefined;
      this.replaceWith(p.fd, tmp, p.name);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      this.removeQuietly(p.fd, tmp);
      throw e;
    } finally {
      closeSync(p.fd);
    }
    this.report.files++;
    this.report.bytes += bytes;
  }

  private async symlink(cap: string, entry: EntryInfo, rel: Buffer, shown: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of await this.o.client.download(cap)) chunks.push(c as Buffer);
    const target = Buffer.concat(chunks);
    if (this.o.counts) this.o.counts.bytes += target.length;
    const p = this.openParent(rel);
    const tmp = this.tempName();
    try {
      this.at.symlinkat(target, p.fd, tmp);
      applyMeta(this.at, { dirfd: p.fd, name: tmp }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
      this.replaceWith(p.fd, tmp, p.name);
    } catch (e) {
      this.removeQuietly(p.fd, tmp);
      throw e;
    } finally {
      closeSync(p.fd);
    }
    this.report.symlinks++;
  }

  /** A directory's own metadata, once its children are done, through its own descriptor. */
  private dirMeta(rel: Buffer, shown: string, entry: EntryInfo): void {
    const fd = this.at.openBeneath(this.root, rel, O_DIR);
    try {
      applyMeta(this.at, { fd }, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
    } finally {
      closeSync(fd);
    }
  }

  private removeQuietly(dirfd: number, name: Buffer): void {
    try {
      this.at.unlinkat(dirfd, name, 0);
    } catch {
      // not made, or already renamed into place
    }
  }

  /**
   * Renames into place within one directory (renameat replaces a file or symlink, never
   * following it). A directory in the way is never deleted by --force alone: that is a
   * conflict for this entry, unless --replace-type-changes allows replacing it (and its tree).
   */
  private replaceWith(dirfd: number, tmp: Buffer, name: Buffer): void {
    try {
      this.at.renameat(dirfd, tmp, dirfd, name);
    } catch (e) {
      if (errnoCode(e) !== 'EISDIR' && errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
      if (!this.o.replaceTypes) {
        this.removeQuietly(dirfd, tmp);
        throw new EntryError('a directory is in the way in DEST; not replaced (--replace-type-changes replaces it with its whole tree)');
      }
      this.removeTree(dirfd, name);
      this.at.renameat(dirfd, tmp, dirfd, name);
    }
  }

  /** Deletes `name` in `dirfd` and everything under it, by descriptors (no symlink followed). */
  private removeTree(dirfd: number, name: Buffer): void {
    if ((this.at.fstatatMode(dirfd, name, AT_SYMLINK_NOFOLLOW) & S_IFMT) !== S_IFDIR) {
      this.at.unlinkat(dirfd, name, 0);
      return;
    }
    const fd = this.at.openBeneath(dirfd, name, O_DIR);
    try {
      // The kernel's name for the open directory lists it; entries are reached through `fd`.
      for (const child of readdirSync(`/proc/self/fd/${fd}`, { encoding: 'buffer' })) this.removeTree(fd, child);
    } finally {
      closeSync(fd);
    }
    this.at.unlinkat(dirfd, name, AT_REMOVEDIR);
  }

  /** Closes DEST's descriptor. */
  close(): void {
    if (this.root >= 0) closeSync(this.root);
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
