/**
 * Writing all of a buffer. write(2) may write less than asked — on a filling disk it writes
 * what fits and only the *next* call fails with ENOSPC — so a single call whose count is not
 * checked can silently truncate a file. These loop until everything is written or it fails.
 */
import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

function noProgress(): NodeJS.ErrnoException {
  return Object.assign(new Error('write made no progress'), { code: 'ENOSPC' });
}

export function writeFullySync(fd: number, data: string | Buffer): number {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    const n = writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw noProgress();
    off += n;
  }
  return buf.length;
}

export async function writeFully(fh: FileHandle, data: string | Buffer): Promise<number> {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw noProgress();
    off += bytesWritten;
  }
  return buf.length;
}
