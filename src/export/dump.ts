/**
 * `dump`: a backup's file as its bytes, or a directory as a tar (POSIX pax) or zip stream,
 * written to a sink that waits for its reader (stdout, or an HTTP response).
 *
 * Bounded memory, whatever the size of the tree: the walk holds the listings on its path
 * (entries.ts); members are written one after the other; while one is written, the next few
 * small files (up to 2 × concurrency of them, each at most 256 KiB as stored and 2 MiB as
 * decoded) are downloaded into memory ahead of it, so a tree of small files is not one round
 * trip per file. Larger files are streamed from the gateway through xz straight into the sink.
 *
 * A file that cannot be read is never a silently short member: one whose download fails before
 * its header is written (gone from the grid, a wrong size after the retries, xz that does not
 * decode) is left out with a warning naming it, and the dump ends with exit 3; one that fails
 * after its header is out cannot be taken back — the dump stops with an error naming it (exit 1),
 * and the stream lacks its end (tar and unzip both report a cut archive).
 */
import { log } from '../log.js';
import { interpret, sizeOnDisk, type EntryInfo, type SizeSource } from '../browse/entry-info.js';
import { walkEntries, type WalkedEntry } from '../browse/entries.js';
import type { DirSource } from '../browse/listing.js';
import type { RevisitBudget } from '../browse/tree.js';
import { AppError, EXIT } from '../errors.js';
import { textToCaps, encodeCaps } from '../meta/capability.js';
import { CAPABILITY } from '../meta/read.js';
import { EntryError } from '../restore/dest.js';
import { decodePath } from '../scan/queue-codec.js';
import { checkedDownload, type RetryPolicy } from '../restore/fetch.js';
import type { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';
import type { NodeInfo } from '../tahoe/types.js';
import { createArchive, GatheringSink, type Archive, type ArchiveFormat, type MemberMeta, type Sink } from './archive.js';
import { openContents, spoolDirectory, unxz, wholeContents, type FetchContext } from './contents.js';
import { scavenged } from '../core/scavenge.js';
import { tarAcls } from './tar.js';
import { MemberSizeError } from './zip.js';

export interface DumpOptions {
  client: TahoeClient;
  dirs: DirSource;
  sizes?: SizeSource;
  /** A download of the wrong size is made again as this allows (http.interactive_retry, as restore). */
  retry: RetryPolicy;
  signal: AbortSignal;
  /** Small files downloaded ahead: twice this many (operation.concurrency). */
  concurrency: number;
  revisits?: RevisitBudget;
  /** Where the bytes go; it must wait for its reader (bounded memory rests on that). */
  sink: Sink;
  /** zip only: plaintext size from which a member is zip64 (for tests). */
  zip64From?: number;
}

export interface DumpReport {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  /** File contents written (as on disk). */
  bytes: number;
  /** Entries left out (each said in a warning). */
  skipped: number;
  /** Bytes handed to the sink. */
  written: number;
}

/** The dump stopped in the middle of a member: what was written is not a complete archive. */
export class DumpCutError extends AppError {
  constructor(shown: string, why: string) {
    super(`the dump stopped in the middle of ${JSON.stringify(shown)}: ${why}; what was written is not a complete archive (or file)`, 'dump-cut', EXIT.FAILURE);
  }
}

/** Small files are downloaded ahead, up to these sizes (stored; decoded). */
const SMALL = 256 * 1024;
const DECODED = 2 * 1024 * 1024;
const TARGET_LIMIT = 4096;

/** Failures that are one entry's trouble (left out, exit 3); anything else ends the dump. */
function entryTrouble(e: unknown): boolean {
  if (e instanceof EntryError) return true;
  return e instanceof TahoeError && (e.tahoeCode === 'gone' || e.tahoeCode === 'not-found');
}

function metaOf(bytes: Buffer, e: EntryInfo, shown: string): MemberMeta {
  const m: MemberMeta = {
    path: bytes,
    mode: e.mode ?? (e.kind === 'dir' ? 0o755 : 0o644),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtimeNs: e.mtimeNs ?? 0n,
  };
  const xattrs: [string, Buffer][] = Object.entries(e.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]);
  if (e.caps && e.kind === 'file') {
    try {
      xattrs.push([CAPABILITY, encodeCaps(textToCaps(e.caps))]);
    } catch (err) {
      log.warn(`${JSON.stringify(shown)}: its capabilities (${JSON.stringify(e.caps)}) cannot be encoded (${(err as Error).message}); dumped without them`);
    }
  }
  if (xattrs.length) m.xattrs = xattrs;
  if (e.acls) {
    const a = tarAcls(e.acls);
    m.aclAccess = a.access;
    if (e.kind === 'dir') m.aclDefault = a.default;
  }
  return m;
}

type Settled<T> = { ok: T } | { err: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> => p.then((ok) => ({ ok }), (err: unknown) => ({ err }));

interface Item {
  w: WalkedEntry;
  /** Contents downloaded ahead (small files, symlink targets). */
  ahead?: Promise<Settled<Buffer | 'stream'>>;
}

/** Writes the archive of the directory `dircap` (its entries named below `self`'s name when given, `self` first). */
export async function dumpArchive(o: DumpOptions, format: ArchiveFormat, dircap: string, self?: { bytes: Buffer; entry: EntryInfo }): Promise<DumpReport> {
  const out = new GatheringSink(o.sink);
  const archive = createArchive(format, out, { zip64From: o.zip64From });
  const spools = spoolDirectory();
  const ctx: FetchContext = { client: o.client, retry: o.retry, signal: o.signal, spoolDir: spools.get };
  const report: DumpReport = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, skipped: 0, written: 0 };
  const skip = (shown: string, why: string) => {
    report.skipped++;
    log.warn(`cannot dump ${JSON.stringify(shown)}: ${why}; left out of the archive`);
  };
  try {
    if (self) {
      await archive.dir(metaOf(self.bytes, self.entry, self.bytes.toString('utf8')));
      report.dirs++;
    }
    const walk = walkEntries(o.dirs, dircap, {
      revisits: o.revisits,
      signal: o.signal,
      prefix: self?.bytes,
      onCycle: (shown) => {
        report.skipped++;
        log.warn(`${JSON.stringify(shown)} is a directory that contains itself (a cycle): not entered again, its contents are left out of the archive`);
      },
      onConflict: (shown) => skip(shown, 'another entry of its directory has the same name on disk (a hostile or corrupted directory)'),
    })[Symbol.asyncIterator]();
    const window: Item[] = [];
    const ahead = Math.max(2, 2 * o.concurrency);
    let walked = false;
    const links = new Map<string, Buffer>();
    for (;;) {
      while (!walked && window.length < ahead) {
        const r = await walk.next();
        if (r.done) walked = true;
        else window.push(prepare(ctx, o.sizes, r.value));
      }
      const item = window.shift();
      if (!item) break;
      o.signal.throwIfAborted();
      await writeItem(ctx, o.sizes, archive, item, links, report, skip);
    }
    await archive.end();
    report.written = out.written;
    return report;
  } finally {
    archive.dispose();
    spools.remove();
  }
}

/** Starts the download of a small file or a symlink's target. */
function prepare(ctx: FetchContext, sizes: SizeSource | undefined, w: WalkedEntry): Item {
  const { child, entry } = w;
  const cap = child.ro_uri;
  if (!cap || entry.kind === 'dir') return { w };
  if (entry.kind === 'symlink') return { w, ahead: settle(targetOf(ctx, w.shown, cap, child.size)) };
  if ((child.size ?? Infinity) > SMALL) return { w };
  const plain = sizeOnDisk({ cap, size: child.size, metadata: child.metadata ?? {} }, entry, sizes);
  return { w, ahead: settle(wholeContents(ctx, w.shown, cap, child.size, entry.enc === 'xz', plain, DECODED)) };
}

async function targetOf(ctx: FetchContext, shown: string, cap: string, size: number | undefined): Promise<Buffer> {
  return wholeContents(ctx, shown, cap, size, false, undefined, TARGET_LIMIT).then((b) => {
    if (b === 'stream') throw new EntryError(`its target is longer than ${TARGET_LIMIT} bytes`);
    return b;
  });
}

async function writeItem(ctx: FetchContext, sizes: SizeSource | undefined, archive: Archive, item: Item, links: Map<string, Buffer>, report: DumpReport, skip: (shown: string, why: string) => void): Promise<void> {
  const { w } = item;
  const { child, entry } = w;
  const meta = metaOf(w.bytes, entry, w.shown);
  if (entry.kind === 'dir') {
    await archive.dir(meta);
    report.dirs++;
    return;
  }
  const cap = child.ro_uri;
  if (!cap || child.type === 'unknown') return skip(w.shown, 'it is an unknown kind of node');
  if (entry.kind === 'symlink') {
    const r = await item.ahead!;
    if ('err' in r) return failed(r.err, w.shown, skip);
    await archive.symlink(meta, r.ok as Buffer);
    report.symlinks++;
    return;
  }
  // A hard link to a member already written (the group's first one that could be read).
  const first = entry.hardlink !== undefined ? links.get(entry.hardlink) : undefined;
  if (first && (await archive.hardlink(meta, first))) {
    report.hardlinks++;
    return;
  }
  const r = item.ahead ? await item.ahead : undefined;
  if (r && 'err' in r) return failed(r.err, w.shown, skip);
  if (r && r.ok !== 'stream') {
    await archive.file(meta, r.ok);
    report.bytes += r.ok.length;
  } else {
    const plain = sizeOnDisk({ cap, size: child.size, metadata: child.metadata ?? {} }, entry, sizes);
    let contents;
    try {
      contents = await openContents(ctx, w.shown, cap, child.size, entry.enc === 'xz', plain);
    } catch (e) {
      return failed(e, w.shown, skip);
    }
    try {
      await archive.stream(meta, contents.size, contents.body);
    } catch (e) {
      if (e instanceof MemberSizeError || entryTrouble(e)) throw new DumpCutError(w.shown, (e as Error).message);
      throw e;
    } finally {
      contents.dispose();
    }
    report.bytes += contents.size;
  }
  report.files++;
  if (entry.hardlink !== undefined && !links.has(entry.hardlink)) links.set(entry.hardlink, w.bytes);
}

function failed(e: unknown, shown: string, skip: (shown: string, why: string) => void): void {
  if (!entryTrouble(e)) throw e;
  skip(shown, (e as Error).message);
}

/**
 * Writes one file's bytes as on disk (xz decoded) to `sink`: checked against the stored size
 * (raw) or the plaintext size the edge or the cache gives (xz). Resolves with the bytes written.
 */
export async function dumpFile(o: Pick<DumpOptions, 'client' | 'sizes' | 'sink' | 'signal'>, child: NodeInfo, entry: EntryInfo, shown: string): Promise<number> {
  const cap = child.ro_uri;
  if (!cap || child.type !== 'filenode') throw new AppError(`${JSON.stringify(shown)} is not a file that can be read`);
  const plain = sizeOnDisk({ cap, size: child.size, metadata: child.metadata ?? {} }, entry, o.sizes);
  const src = checkedDownload(o.client, cap, child.size);
  let n = 0;
  try {
    for await (const chunk of scavenged(entry.enc === 'xz' ? unxz(src) : src)) {
      n += chunk.length;
      if (plain !== undefined && n > plain) throw new MemberSizeError(n, plain);
      await o.sink(chunk);
    }
    if (plain !== undefined && n !== plain) throw new MemberSizeError(n, plain);
  } catch (e) {
    if (e instanceof MemberSizeError || entryTrouble(e)) throw n ? new DumpCutError(shown, (e as Error).message) : new AppError(`cannot dump ${JSON.stringify(shown)}: ${(e as Error).message}`);
    throw e;
  }
  return n;
}

/**
 * The child a path segment names: as ls and find print names (escaped: `\n`, `\\`, `\xNN`, the
 * name's bytes on disk), else the grid's child name as it is. The printed form comes first, so a
 * path copied from their output names what they showed.
 */
function childNamed(children: Record<string, NodeInfo>, segment: string, parent: string): string | undefined {
  if (segment.includes('\\')) {
    let want: Buffer | undefined;
    try {
      want = decodePath(segment);
    } catch {
      want = undefined; // not an escaped form (`back\slash` as typed): the name as it is
    }
    if (want) {
      for (const [name, c] of Object.entries(children)) {
        let bytes: Buffer;
        try {
          bytes = interpret({ path: [name], type: c.type, cap: c.ro_uri, size: c.size, metadata: c.metadata ?? {} }, parent).nameBytes;
        } catch {
          continue; // a hostile sibling is refused where it is read, not here
        }
        if (bytes.equals(want)) return name;
      }
    }
  }
  return Object.prototype.hasOwnProperty.call(children, segment) ? segment : undefined;
}

/**
 * The entry at `segments` (names as ls prints them, or as listed) in the backup `root`: its
 * listing node, what its edge says, its path's bytes as on disk (each name a rawname where
 * its edge has one) and its names as the grid lists them; undefined when not there.
 */
export async function entryAt(dirs: DirSource, root: string, segments: readonly string[]): Promise<{ child: NodeInfo; entry: EntryInfo; bytes: Buffer; names: string[] } | undefined> {
  let cap = root;
  let child: NodeInfo | undefined;
  let entry: EntryInfo | undefined;
  const names: Buffer[] = [];
  const listed: string[] = [];
  for (const [i, segment] of segments.entries()) {
    const children = await dirs.children(cap);
    const name = childNamed(children, segment, segments.slice(0, i).join('/'));
    child = name === undefined ? undefined : children[name];
    if (!child || name === undefined) return undefined;
    entry = interpret({ path: [name], type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, segments.slice(0, i).join('/'));
    names.push(entry.nameBytes);
    listed.push(name);
    if (i < segments.length - 1) {
      if (child.type !== 'dirnode' || !child.ro_uri) return undefined;
      cap = child.ro_uri;
    }
  }
  return child && entry ? { child, entry, bytes: Buffer.concat(names.flatMap((n, i) => (i ? [Buffer.from('/'), n] : [n]))), names: listed } : undefined;
}
