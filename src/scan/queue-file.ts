/**
 * Writing and reading the queue file. Writing streams to a temporary file (mode 0600
 * whatever the umask), syncs it, and renames it into place: a crash leaves the old queue or
 * the new one, never half of one. Reading streams line by line. A header comment records the
 * source the queue was built from, so a queue of another tree is not uploaded by mistake.
 */
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
}

/** What a queue holds, recorded in its last line (a comment): for progress totals only. */
export interface QueueTotals {
  entries: number;
  /** Total size of the regular files listed. */
  bytes: number;
}

const TOTALS = /^# totals: (\d+) entries, (\d+) bytes in files$/m;

/**
 * The totals a queue file's trailer records, or undefined (an older or hand-made queue).
 * Reads only the file's tail. The numbers are never trusted for anything but display.
 */
export function readQueueTotals(path: string): QueueTotals | undefined {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 256));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    const m = TOTALS.exec(tail.toString('utf8'));
    return m ? { entries: Number(m[1]), bytes: Number(m[2]) } : undefined;
  } finally {
    closeSync(fd);
  }
}

export interface WriteResult {
  entries: number;
  bytes: number;
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

export async function writeQueue(path: string, header: QueueHeader, batches: AsyncIterable<QueueEntry[]>, totals?: () => QueueTotals): Promise<WriteResult> {
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
  try {
    await fh.chmod(0o600);
    let buf = `${MAGIC}\n# source: ${encodePath(header.source)}\n# created: ${new Date().toISOString()}\n`;
    for await (const batch of batches) {
      for (const e of batch) buf += `${formatLine(e)}\n`;
      entries += batch.length;
      if (buf.length >= 1 << 18) {
        bytes += await writeFully(fh, buf);
        buf = '';
      }
    }
    if (totals) {
      const t = totals();
      buf += `# totals: ${t.entries} entries, ${t.bytes} bytes in files\n`;
    }
    bytes += await writeFully(fh, buf);
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
  return { entries, bytes };
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
  let sawMagic = false;
  let headerDone = false;
  try {
    for await (const line of rl) {
      lineNo++;
      if (line.startsWith('#')) {
        if (lineNo === 1 && line === MAGIC) sawMagic = true;
        else if (sawMagic && !headerDone && line.startsWith('# source: ')) {
          headerDone = true;
          yield { header: { source: decodePath(line.slice('# source: '.length)) } };
        }
        continue;
      }
      let entry: QueueEntry | undefined;
      try {
        entry = parseLine(line);
      } catch (e) {
        if (e instanceof QueueFormatError) throw new QueueFileError(`${path}:${lineNo}: ${e.message}`);
        throw e;
      }
      if (entry) yield { entry, lineNo };
    }
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
