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
import { constants, lstatSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeErrno, errnoCode, isSystemError } from '../errors.js';
import { log, logs } from '../log.js';
import { interpret, UnsafeNameError, type EntryInfo } from '../browse/entry.js';
import type { BackupNode } from '../browse/tree.js';
import { byNameBytes, onPath, type Ancestors } from '../browse/tree.js';
import type { TahoeClient } from '../tahoe/client.js';
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
  // Not yet bounded: every directory's children are submitted at once (unbounded backlog).
  private readonly limiter: Pool;

  constructor(private readonly o: RestoreOptions) {
    this.limiter = new Pool('restore', o.concurrency, new AbortController().signal, Infinity);
  }

  private trouble = () => {
    this.report.troubles++;
  };

  /** Restores the children of the directory `dircap` into `at` (`shown` in messages). */
  async dir(dircap: string, at: Buffer, shown: string, up?: Ancestors): Promise<void> {
    const path: Ancestors = { cap: dircap, up };
    const info = await this.limiter.run(() => this.o.client.info(dircap));
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
    await Promise.all(unique.map(({ node, entry }) => this.child(node, entry, Buffer.concat([at, SLASH, entry.nameBytes]), `${shown}/${entry.nameBytes.toString('utf8')}`, path)));
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
        applyMeta(at, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
        this.report.dirs++;
      } else {
        await this.limiter.run(() => atDestAsync(() => (entry.kind === 'symlink' ? this.symlink(node.cap!, entry, at, shown) : this.file(node.cap!, entry, at, shown))));
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

  /** A directory to write into: made here, or an existing real directory (never a symlink). */
  private ensureDir(at: Buffer): void {
    try {
      mkdirSync(at, { mode: 0o700 });
      return;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const st = lstatSync(at);
    if (st.isDirectory()) return;
    if (!this.o.force) throw new EntryError(`it exists in DEST and is not a directory (--force replaces it)`);
    // A symlink holds no data and is replaced with --force; a file only with --replace-type-changes.
    if (!st.isSymbolicLink() && !this.o.replaceTypes) throw new EntryError('a file is in the way of this directory in DEST; not replaced (--replace-type-changes replaces it)');
    unlinkSync(at);
    mkdirSync(at, { mode: 0o700 });
  }

  private tempName(at: Buffer): Buffer {
    const parent = at.subarray(0, at.lastIndexOf(0x2f));
    return Buffer.concat([parent, Buffer.from(`/.lafs-restore-${randomBytes(6).toString('hex')}`)]);
  }

  private async file(cap: string, entry: EntryInfo, at: Buffer, shown: string): Promise<void> {
    const tmp = this.tempName(at);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let bytes = 0;
    const counts = this.o.counts;
    try {
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
      // The write stream owns the handle and closes it when done (with autoClose off it would
      // never emit 'close', and the pipeline would never settle).
      await pipeline([body, ...stages, fh.createWriteStream()]).catch((e: unknown) => {
        // The edge says xz and the contents are not: that entry's trouble, not the restore's.
        throw undecodable ? new EntryError(`its contents are marked xz but do not decode (${undecodable.message}); skipped`) : e;
      });
      applyMeta(tmp, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
      this.replaceWith(tmp, at);
    } catch (e) {
      await fh.close().catch(() => {});
      rmSync(tmp, { force: true });
      throw e;
    }
    this.report.files++;
    this.report.bytes += bytes;
  }

  private async symlink(cap: string, entry: EntryInfo, at: Buffer, shown: string): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of await this.o.client.download(cap)) chunks.push(c as Buffer);
    const target = Buffer.concat(chunks);
    if (this.o.counts) this.o.counts.bytes += target.length;
    const tmp = this.tempName(at);
    symlinkSync(target, tmp);
    try {
      applyMeta(tmp, shown, entry, { owner: this.o.owner, onTrouble: this.trouble });
      this.replaceWith(tmp, at);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    this.report.symlinks++;
  }

  /**
   * Renames into place. A directory in the way is never deleted by --force alone: that is a
   * conflict for this entry, unless --replace-type-changes allows replacing it (and its tree).
   */
  private replaceWith(tmp: Buffer, at: Buffer): void {
    try {
      renameSync(tmp, at);
    } catch (e) {
      if (errnoCode(e) !== 'EISDIR' && errnoCode(e) !== 'ENOTEMPTY' && errnoCode(e) !== 'EEXIST') throw e;
      if (!this.o.replaceTypes) {
        rmSync(tmp, { force: true });
        throw new EntryError('a directory is in the way in DEST; not replaced (--replace-type-changes replaces it with its whole tree)');
      }
      rmSync(at, { recursive: true, force: true });
      renameSync(tmp, at);
    }
  }
}

/** Restores the directory `dircap`'s contents into `opts.dest`. */
export async function restoreDir(dircap: string, opts: RestoreOptions): Promise<RestoreReport> {
  const r = new Restorer(opts);
  await r.dir(dircap, Buffer.from(opts.dest), '');
  return r.report;
}

/** Restores one entry (a file, symlink or directory reached by a path) into `opts.dest`. */
export async function restoreEntry(node: BackupNode, opts: RestoreOptions): Promise<RestoreReport> {
  const r = new Restorer(opts);
  const entry = interpret(node, node.path.slice(0, -1).join('/'));
  await r.child(node, entry, Buffer.concat([Buffer.from(opts.dest), SLASH, entry.nameBytes]), node.path.join('/'));
  return r.report;
}
