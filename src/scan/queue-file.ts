/**
 * Writing and reading the queue file. Writing streams to a temporary file (mode 0600
 * whatever the umask), syncs it, and renames it into place: a crash leaves the old queue or
 * the new one, never half of one. Reading streams line by line.
 *
 * Comment lines before the entries (the header) record the source the queue was built from
 * (a queue of another tree is never uploaded by mistake), when its walk began, and a digest
 * of what decided which entries it lists (the filters, the tool's own files left out, whether
 * ACLs and capabilities were read). Comment lines after them (the trailer) record totals (for
 * progress), how many entries the walk had to leave out, and the directories as the walk saw
 * them (their number, the newest ctime, a digest of every directory's path and ctime): what
 * proves a queue still fresh (backup/queue-reuse.ts).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { AppError, describeErrno, EXIT } from '../errors.js';
import { writeFully } from '../fsutil.js';
import { decodePath, encodePath, formatLine, parseLine, QueueFormatError, type QueueEntry } from './queue-codec.js';
import { processAlive } from '../pids.js';

const MAGIC = '# lafs-backup queue v1';

/** Reading a queue file never blocks (a FIFO put at its path must not hang the run). */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

export class QueueFileError extends AppError {
  constructor(message: string) {
    super(message, 'queue', EXIT.USAGE);
  }
}

export interface QueueHeader {
  /** The source directory the queue describes. */
  source: Buffer;
  /** When the walk began (taken before its first stat). Absent in queues of earlier versions. */
  created?: Date;
  /** A digest of what decided which entries are listed (phase1.ts selectionId). */
  selection?: string;
}

/** What a queue holds, recorded in its trailer (comments after the entries). */
export interface QueueTrailer {
  entries: number;
  /** Total size of the regular files listed. */
  bytes: number;
  /** Entries the walk could not read (they make a backup incomplete). */
  left?: { unreadable: number; vanished: number };
  /** The directories listed, as the walk saw them (see DirDigest in walk.ts). */
  dirs?: { count: number; newestCtimeNs: bigint; ctimes: string };
}

const TOTALS = /^# totals: (\d+) entries, (\d+) bytes in files$/m;
const LEFT = /^# left out: (\d+) unreadable, (\d+) vanished$/m;
const DIRS = /^# directories: (\d+), newest ctime (-?\d+), ctimes sha256:([0-9a-f]{64})$/m;

function trailerLines(t: QueueTrailer): string {
  let out = `# totals: ${t.entries} entries, ${t.bytes} bytes in files\n`;
  if (t.left) out += `# left out: ${t.left.unreadable} unreadable, ${t.left.vanished} vanished\n`;
  if (t.dirs) out += `# directories: ${t.dirs.count}, newest ctime ${t.dirs.newestCtimeNs}, ctimes sha256:${t.dirs.ctimes}\n`;
  return out;
}

/**
 * The trailer of a queue file, or undefined (an older or hand-made queue). Reads only the
 * file's tail. Nothing in it is trusted for what is uploaded: totals are for display, the rest
 * can only make a queue be built again (or a reused one count as incomplete).
 */
export function readQueueTrailer(path: string): QueueTrailer | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 512));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    const text = tail.toString('utf8');
    const m = TOTALS.exec(text);
    if (!m) return undefined;
    const t: QueueTrailer = { entries: Number(m[1]), bytes: Number(m[2]) };
    const left = LEFT.exec(text);
    if (left) t.left = { unreadable: Number(left[1]), vanished: Number(left[2]) };
    const dirs = DIRS.exec(text);
    if (dirs) t.dirs = { count: Number(dirs[1]), newestCtimeNs: BigInt(dirs[2]!), ctimes: dirs[3]! };
    return t;
  } finally {
    closeSync(fd);
  }
}

export interface WriteResult {
  entries: number;
  bytes: number;
  /** The SHA-256 of every byte written: phase 2 knows by it that the file it reads is this one. */
  sha256: Buffer;
}

/** Removes temporary queue files left by writers that were killed (their pid is gone). */
async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const n of names) {
    const pid = n.startsWith(prefix) ? Number(n.slice(prefix.length)) : NaN;
    if (Number.isInteger(pid) && pid !== process.pid && !processAlive(pid)) await unlink(join(dirname(path), n)).catch(() => {});
  }
}

function headerLines(h: QueueHeader): string {
  let out = `${MAGIC}\n# source: ${encodePath(h.source)}\n# created: ${(h.created ?? new Date()).toISOString()}\n`;
  if (h.selection) out += `# selection: ${h.selection}\n`;
  return out;
}

/** Writes the queue: the header, the entries of `batches`, then the trailer `trailer()` gives. */
export async function writeQueue(path: string, header: QueueHeader, batches: AsyncIterable<QueueEntry[]>, trailer?: () => QueueTrailer): Promise<WriteResult> {
  await removeStaleTemps(path);
  const tmp = `${path}.tmp-${process.pid}`;
  let fh;
  try {
    fh = await open(tmp, 'w', 0o600);
  } catch (e) {
    throw new AppError(`cannot write queue file ${tmp}: ${describeErrno(e)}`);
  }
  let entries = 0;
  let bytes = 0;
  const digest = createHash('sha256');
  const put = async (text: string): Promise<number> => {
    const b = Buffer.from(text, 'utf8');
    digest.update(b);
    return writeFully(fh!, b);
  };
  try {
    await fh.chmod(0o600);
    let buf = headerLines(header);
    for await (const batch of batches) {
      for (const e of batch) buf += `${formatLine(e)}\n`;
      entries += batch.length;
      if (buf.length >= 1 << 18) {
        bytes += await put(buf);
        buf = '';
      }
    }
    if (trailer) buf += trailerLines(trailer());
    bytes += await put(buf);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (e instanceof AppError) throw e;
    const code = (e as { code?: string }).code;
    if (code) throw new AppError(`cannot write queue file ${path}: ${describeErrno(e)}`);
    throw e;
  }
  return { entries, bytes, sha256: digest.digest() };
}

/**
 * Whether the file at `path` holds exactly the bytes whose SHA-256 is `sha256` (read in 1 MiB
 * pieces, no more than `limit` bytes: a bigger file is another one).
 */
export async function sameBytes(path: string, sha256: Buffer, limit: number): Promise<boolean> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, READ_FLAGS);
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) return false;
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest().equals(sha256);
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/**
 * What is at `path` now: nothing, a queue file of this tool (its first line is the magic line),
 * or something else — which phase 1 must never overwrite (a mistyped `--queue-only PATH`).
 */
export function queueFileState(path: string): 'missing' | 'queue' | 'other' {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return 'missing';
    // Not ours to judge: the file cannot be read (another user's, a directory we cannot enter).
    if (code !== 'EISDIR' && code !== 'ENXIO') throw new AppError(`cannot read queue file ${path}: ${describeErrno(e)}`);
    return 'other';
  }
  try {
    if (!fstatSync(fd).isFile()) return 'other';
    const head = Buffer.alloc(MAGIC.length + 1);
    const n = readSync(fd, head, 0, head.length, 0);
    return n === head.length && head.toString('utf8') === `${MAGIC}\n` ? 'queue' : 'other';
  } catch {
    return 'other';
  } finally {
    closeSync(fd);
  }
}

export interface QueueLine {
  entry: QueueEntry;
  lineNo: number;
}

/** Reads the header only (for the reuse rules); undefined for a file without one. */
export async function readQueueHeader(path: string): Promise<QueueHeader | undefined> {
  for await (const item of readQueueRaw(path)) {
    if ('header' in item) return item.header;
    return undefined;
  }
  return undefined;
}

/** Takes a header line into `h`; false when the line is not one. */
function headerLine(h: QueueHeader, line: string): boolean {
  if (line.startsWith('# source: ')) h.source = decodePath(line.slice('# source: '.length));
  else if (line.startsWith('# created: ')) {
    const d = new Date(line.slice('# created: '.length));
    if (!Number.isNaN(d.getTime())) h.created = d;
  } else if (line.startsWith('# selection: ')) h.selection = line.slice('# selection: '.length);
  else return false;
  return true;
}

async function* readQueueRaw(path: string): AsyncGenerator<QueueLine | { header: QueueHeader }> {
  let fh: FileHandle;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (e) {
    throw new AppError(`cannot read queue file ${path}: ${describeErrno(e)}`);
  }
  const stream = fh.createReadStream({ encoding: 'utf8', highWaterMark: 1 << 16 });
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  // The header: the comment lines before the first entry, in a file that starts with MAGIC.
  let header: QueueHeader | undefined;
  let inHeader = false;
  try {
    for await (const line of rl) {
      lineNo++;
      if (lineNo === 1 && line === MAGIC) {
        inHeader = true;
        continue;
      }
      if (inHeader && line.startsWith('#')) {
        header ??= { source: Buffer.alloc(0) };
        headerLine(header, line);
        continue;
      }
      if (inHeader) {
        inHeader = false;
        if (header?.source.length) yield { header };
      }
      if (line.startsWith('#')) continue;
      let entry: QueueEntry | undefined;
      try {
        entry = parseLine(line);
      } catch (e) {
        if (e instanceof QueueFormatError) throw new QueueFileError(`${path}:${lineNo}: ${e.message}`);
        throw e;
      }
      if (entry) yield { entry, lineNo };
    }
    if (inHeader && header?.source.length) yield { header };
  } catch (e) {
    if (e instanceof QueueFileError) throw e;
    if ((e as { code?: string }).code) throw new AppError(`cannot read queue file ${path}: ${describeErrno(e)}`);
    throw e;
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Streams a queue file's entries, with their line numbers for error messages. */
export async function* readQueue(path: string): AsyncGenerator<QueueLine> {
  for await (const item of readQueueRaw(path)) {
    if (!('header' in item)) yield item;
  }
}
