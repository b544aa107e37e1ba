/**
 * `restore`: a backup (or a path inside it) back into a directory, with its metadata.
 *
 * The walk: depth first, subdirectories one after the other, files and symlinks as jobs of a
 * pool with a bounded backlog, so memory is the listings on the current path plus the pool.
 * Every name of a directory is checked before anything in it is written (a name with '/' or
 * NUL, '.', '..' or empty aborts the restore, naming the parent; two children with one name on
 * disk are a conflict); a directory already on the current path is not entered again, and the
 * entries of directories walked before count against the revisit budget (tree.ts). Every
 * write goes through DEST's descriptors (dest.ts): nothing outside DEST, no symlink followed.
 * Every download is checked against the listing's size (fetch.ts). With --force, a file
 * already in place as the backup says (a rerun of a restore that was cut off) is not
 * downloaded again: its metadata is applied where it is (resume.ts). Directories get their
 * metadata last, once their children are done.
 */
import { closeSync } from 'node:fs';
import { AppError } from '../errors.js';
import { log, logs } from '../log.js';
import { interpret, UnsafeNameError, type EntryInfo } from '../browse/entry-info.js';
import type { BackupNode } from '../browse/tree.js';
import { byNameBytes, onPath, RevisitBudget, type Ancestors } from '../browse/tree.js';
import type { TahoeClient } from '../tahoe/client.js';
import { atCalls, whyUnavailable } from '../native.js';
import { TahoeError } from '../tahoe/errors.js';
import { Pool } from '../core/pool.js';
import { applyMeta, type ApplyOptions } from './apply.js';
import { atDest, atDestAsync, Dest, EntryError } from './dest.js';
import { checkedDownload, refetching, SizeMismatch, writeContents, type RetryPolicy } from './fetch.js';
import { keepInPlace } from './resume.js';


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
  /** Counts the entries of directories walked again (default: DEFAULT_MAX_REVISITED). */
  revisits?: RevisitBudget;
  /** Downloads that come back with another size than the listing's: how often to download again (the client's http.retry). */
  retry?: RetryPolicy;
}

export interface RestoreReport {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** Files already in place as the backup says (a rerun with --force): not downloaded again. */
  kept: number;
  /** Entries that could not be restored, or whose metadata could not be applied. */
  troubles: number;
}

/** Symlink targets: PATH_MAX (the kernel refuses longer ones). */
const TARGET_LIMIT = 4096;
const NO_RETRY: RetryPolicy = { attempts: 0, delays: [0] };

const SLASH = Buffer.from('/');

/** Where an entry goes: its name in an open directory, and its path relative to DEST. */
interface Place {
  dirfd: number;
  name: Buffer;
  rel: Buffer;
}

/**
 * Work handed out that finishes later: `done` settles once it has (and never rejects; a fatal
 * error ends the restore through its stop instead). An object, because a promise returned
 * from an async function would be waited for.
 */
interface Later {
  done: Promise<void>;
}
const NOTHING: Later = { done: Promise.resolve() };

class Restorer {
  readonly report: RestoreReport = { files: 0, dirs: 0, symlinks: 0, bytes: 0, kept: 0, troubles: 0 };
  /** Files and symlinks being restored: `concurrency` at once, a bounded backlog. */
  private readonly limiter: Pool;
  /** DEST (undefined for a dry run): every write goes through it. */
  private readonly dest?: Dest;
  /** Hard-link groups: where the first of each was restored (undefined: it failed). */
  private readonly links = new Map<string, Promise<Buffer | undefined>>();

  /** The restore's one stop: the caller's signal, or the first fatal error. */
  private readonly stop = new AbortController();
  /** The first fatal error (the gateway gone for good, an unsafe name): the restore ends with it. */
  private fatal?: { reason: unknown };
  private readonly revisits: RevisitBudget;
  /** How metadata is applied (the same for every entry). */
  private readonly meta: ApplyOptions;
  /** Files that got neither setuid/setgid bits nor capabilities (not owned as in the backup): said once, at the end, with one of them. */
  private readonly dropped = { count: 0, first: '' };

  constructor(private readonly o: RestoreOptions) {
    const stop = this.stop;
    if (o.signal?.aborted) stop.abort(o.signal.reason);
    else o.signal?.addEventListener('abort', () => stop.abort(o.signal!.reason), { once: true });
    this.limiter = new Pool('restore', o.concurrency, stop.signal);
    this.revisits = o.revisits ?? new RevisitBudget();
    this.meta = {
      owner: o.owner,
      onTrouble: () => this.report.troubles++,
      onPrivilegeDropped: (shown) => {
        if (!this.dropped.count++) this.dropped.first = shown;
      },
    };
    const at = atCalls();
    if (!at) throw new AppError(`restore needs the native addon (its *at calls keep every write beneath DEST), which is not built: ${whyUnavailable()}; run "npm rebuild lafs-backup"`);
    if (!o.dryRun) this.dest = new Dest(at, o.dest, { force: o.force, replaceTypes: Boolean(o.replaceTypes) });
  }

  private trouble = () => {
    this.report.troubles++;
  };

  /** Ends the restore with `reason` (the first one counts): queued work is dropped, the walk stops. */
  private fail(reason: unknown): void {
    if (this.fatal) return;
    this.fatal = { reason };
    this.stop.abort(reason);
  }

  /** Throws the fatal error, if there was one; says what was said once for the whole restore. */
  throwIfFailed(): void {
    if (this.dropped.count) {
      const why = this.o.owner ? 'their owner could not be set' : 'owners are not restored: --no-owner, or not run as root';
      const n = this.dropped.count;
      log.warn(`${n} file${n > 1 ? 's' : ''} restored without ${n > 1 ? 'their' : 'its'} setuid/setgid bits and file capabilities, as ${n > 1 ? 'they are' : 'it is'} not owned as in the backup (${why}), ${n > 1 ? 'among them' : 'namely'} ${JSON.stringify(this.dropped.first)}`);
    }
    if (this.fatal) throw this.fatal.reason;
  }

  /**
   * Restores the children of the directory `dircap` into the open directory `dirfd`, which is
   * `at` relative to DEST (`shown` in messages; `dirfd` is -1 in a dry run). Resolves once
   * everything in it has been handed to the pool, with a promise of when all of that is done
   * (which never rejects: fatal errors go to `fail`). The walk goes on to the next directory
   * meanwhile, so the pool never runs dry at a directory's end.
   */
  async dir(dircap: string, dirfd: number, at: Buffer, shown: string, up?: Ancestors): Promise<Later> {
    // Reached through a directory walked before (this one, or one above it): its entries count.
    const again = this.revisits.enter(dircap) || Boolean(up?.again);
    const path: Ancestors = { cap: dircap, up, again };
    this.stop.signal.throwIfAborted();
    const info = await this.o.client.info(dircap);
    const names = Object.keys(info.children ?? {}).sort(byNameBytes);
    if (again) this.revisits.count(names.length, shown);
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
    // Depth first, in bounded memory: subdirectories are entered one after the other (their
    // listings are the only state kept, depth × width), files and symlinks are jobs of the
    // pool — submitting waits for room, so the walk never runs far ahead of the downloads.
    const pending: Promise<void>[] = [];
    for (const { node, entry } of unique) {
      if (this.stop.signal.aborted) break;
      const rel = at.length ? Buffer.concat([at, SLASH, entry.nameBytes]) : entry.nameBytes;
      const childShown = `${shown}/${entry.nameBytes.toString('utf8')}`;
      try {
        if (this.o.dryRun) await this.child(node, entry, dirfd, rel, childShown, path);
        else if (entry.kind === 'dir') pending.push((await this.enterDir(node, entry, dirfd, rel, childShown, path)).done);
        else pending.push((await this.limiter.submit(() => this.child(node, entry, dirfd, rel, childShown, path))).done.catch((e: unknown) => this.fail(e)));
      } catch (e) {
        this.fail(e);
        break;
      }
    }
    return { done: Promise.all(pending).then(() => undefined) };
  }

  /** A known kind of node, and not a directory already on the path: false (and a warning) otherwise. */
  private enterable(node: BackupNode, entry: EntryInfo, shown: string, up?: Ancestors): node is BackupNode & { cap: string } {
    if (node.type === 'unknown' || !node.cap) {
      this.trouble();
      log.warn(`${JSON.stringify(shown)} is an unknown kind of node; skipped`);
      return false;
    }
    if (entry.kind === 'dir' && onPath(up, node.cap)) {
      // A mutable directory linked into itself (or an ancestor): entering it again never ends.
      this.trouble();
      log.warn(`${JSON.stringify(shown)} is a directory that contains itself (a cycle); not entered again`);
      return false;
    }
    return true;
  }

  /**
   * One entry could not be restored: a warning and the next one, when the trouble is that
   * entry's (its contents gone or undecodable, a failed write into DEST); anything else is fatal.
   */
  private skipped(e: unknown, shown: string): void {
    if (e instanceof UnsafeNameError) throw e;
    if (e instanceof TahoeError && e.tahoeCode !== 'gone' && e.tahoeCode !== 'not-found') throw e;
    if (!(e instanceof TahoeError) && !(e instanceof EntryError)) throw e;
    this.trouble();
    if (this.o.counts) this.o.counts.objects++;
    log.warn(`cannot restore ${JSON.stringify(shown)}: ${e.message}`);
  }

  private finished(shown: string): void {
    if (logs('noise')) log.noise({ path: shown }, 'restored');
    if (this.o.counts) this.o.counts.objects++;
  }

  /**
   * A directory, named `entry.nameBytes` in `dirfd`: made (or reused), filled, and given its
   * own metadata once everything in it is done. Its descriptor stays open until then: its
   * children are made through it, and its metadata is set through it. Resolves as `dir` does.
   */
  async enterDir(node: BackupNode, entry: EntryInfo, dirfd: number, at: Buffer, shown: string, up?: Ancestors): Promise<Later> {
    if (!this.enterable(node, entry, shown, up)) return NOTHING;
    let fd: number;
    let contents: Later;
    try {
      fd = atDest(() => this.dest!.openDir(dirfd, entry.nameBytes));
    } catch (e) {
      this.skipped(e, shown);
      return NOTHING;
    }
    try {
      contents = await this.dir(node.cap, fd, at, shown, up);
    } catch (e) {
      closeSync(fd);
      this.skipped(e, shown);
      return NOTHING;
    }
    const done = contents.done
      .then(() => {
        if (this.stop.signal.aborted) return;
        applyMeta(this.dest!.at, { fd }, shown, entry, this.meta);
        this.report.dirs++;
        this.finished(shown);
      })
      .finally(() => closeSync(fd))
      .catch((e: unknown) => this.fail(e));
    return { done };
  }

  /** A file or symlink (or, in a dry run, anything), named `entry.nameBytes` in `dirfd` (`at` relative to DEST). */
  async child(node: BackupNode, entry: EntryInfo, dirfd: number, at: Buffer, shown: string, up?: Ancestors): Promise<void> {
    if (!this.enterable(node, entry, shown, up)) return;
    if (this.o.dryRun) {
      this.o.onPlan?.(shown, entry.kind);
      if (entry.kind === 'dir') await (await this.dir(node.cap, -1, at, shown, up)).done;
      return;
    }
    const place = { dirfd, name: entry.nameBytes, rel: at };
    try {
      await atDestAsync(() => (entry.kind === 'symlink' ? this.symlink(node.cap, node.size, entry, place, shown) : this.file(node.cap, node.size, entry, place, shown)));
      this.finished(shown);
    } catch (e) {
      this.skipped(e, shown);
    }
  }

  /**
   * A file of a hard-link group: the first of the group restored here is downloaded; the
   * others become links to it (linkat beneath DEST). If the first could not be restored, the
   * next one is downloaded instead.
   */
  private async file(cap: string, size: number | undefined, entry: EntryInfo, place: Place, shown: string): Promise<void> {
    const id = entry.hardlink;
    if (id === undefined) return this.download(cap, size, entry, place, shown);
    const first = this.links.get(id);
    if (first && (await first)) return this.link((await first)!, place);
    let settle!: (v: Buffer | undefined) => void;
    this.links.set(id, new Promise((ok) => (settle = ok)));
    try {
      await this.download(cap, size, entry, place, shown);
      settle(place.rel);
    } catch (e) {
      settle(undefined);
      this.links.delete(id);
      throw e;
    }
  }

  /** `place` becomes another link to the restored file `target` (relative to DEST). */
  private async link(target: Buffer, place: Place): Promise<void> {
    await this.dest!.link(target, place.dirfd, place.name);
    this.report.files++;
  }

  /**
   * A file's contents, downloaded into a temporary file and checked against the listing's
   * `size` (downloaded again on a mismatch, as the retry policy allows), given its metadata,
   * and renamed into place — unless, with --force, it is already there as the backup says.
   */
  private async download(cap: string, size: number | undefined, entry: EntryInfo, place: Place, shown: string): Promise<void> {
    if (this.o.force && keepInPlace(this.dest!, place, size, entry, shown, this.meta)) {
      this.report.files++;
      this.report.kept++;
      return;
    }
    const counts = this.o.counts;
    let written = 0;
    await refetching(shown, this.o.retry ?? NO_RETRY, this.stop.signal, async () => {
      // Progress counts what came down the wire (stored sizes are what the totals know); a
      // download that is made again takes back what it counted.
      let received = 0;
      const onBytes = (n: number) => {
        received += n;
        if (counts) counts.bytes += n;
      };
      try {
        await this.dest!.writeFile(place.dirfd, place.name, async (fd) => {
          written = await writeContents(this.o.client, cap, size, entry.enc === 'xz', fd, onBytes);
          applyMeta(this.dest!.at, { fd }, shown, entry, this.meta);
        });
      } catch (e) {
        if (counts && e instanceof SizeMismatch) counts.bytes -= received;
        throw e;
      }
    });
    this.report.files++;
    this.report.bytes += written;
  }

  private async symlink(cap: string, size: number | undefined, entry: EntryInfo, place: Place, shown: string): Promise<void> {
    const target = await refetching(shown, this.o.retry ?? NO_RETRY, this.stop.signal, async () => {
      const chunks: Buffer[] = [];
      for await (const c of checkedDownload(this.o.client, cap, size, undefined, TARGET_LIMIT)) chunks.push(c);
      return Buffer.concat(chunks);
    });
    if (this.o.counts) this.o.counts.bytes += target.length;
    await this.dest!.symlink(place.dirfd, place.name, target, (dirfd, name) => applyMeta(this.dest!.at, { dirfd, name }, shown, entry, this.meta));
    this.report.symlinks++;
  }

  /** DEST's descriptor (-1 in a dry run). */
  get rootFd(): number {
    return this.dest?.rootFd ?? -1;
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
    await (await r.dir(dircap, r.rootFd, Buffer.alloc(0), '')).done;
    r.throwIfFailed();
  } finally {
    r.close();
  }
  return r.report;
}

/** Restores one entry (a file, symlink or directory reached by a path) into `opts.dest`. */
export async function restoreEntry(node: BackupNode, opts: RestoreOptions): Promise<RestoreReport> {
  const r = new Restorer(opts);
  const entry = interpret(node, node.path.slice(0, -1).join('/'));
  const shown = node.path.join('/');
  try {
    if (entry.kind === 'dir' && !opts.dryRun) await (await r.enterDir(node, entry, r.rootFd, entry.nameBytes, shown)).done;
    else await r.child(node, entry, r.rootFd, entry.nameBytes, shown);
    r.throwIfFailed();
  } finally {
    r.close();
  }
  return r.report;
}
