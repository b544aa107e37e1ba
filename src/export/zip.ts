/**
 * A streaming zip writer (APPNOTE 6.3: deflate, data descriptors, zip64 where sizes or offsets
 * need it), written here rather than taken from yazl: yazl takes names as strings and refuses
 * a backslash in one — both are legal in a Linux file name, and a name that is not UTF-8 must
 * go out as its bytes. The central directory is spooled to a private temporary file as members
 * are written (a 0600 file in a 0700 directory: it holds the backup's file names), so memory
 * does not grow with the number of members.
 *
 * What zip holds of a member: its name (UTF-8 flagged when it is UTF-8), contents, Unix mode
 * and type (symlinks as in Info-ZIP: mode 0120777, the target as contents), mtime (DOS time,
 * and the Unix seconds in an extended-timestamp field), owner (the Info-ZIP `ux` field, used by
 * `unzip -X`). Not xattrs, ACLs or hard links (a hard link is a copy).
 */
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { once } from 'node:events';

export type Sink = (chunk: Buffer) => Promise<void>;

export interface ZipMember {
  path: Buffer;
  type: 'file' | 'symlink' | 'dir';
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
}

const U32 = 0xffffffff;
/** Past this many plaintext bytes an entry is written as zip64 (deflate may grow a little). */
const ZIP64_FROM = 0xf0000000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** DOS date and time (local time, two-second steps, 1980 to 2107). */
function dosTime(ns: bigint): { time: number; date: number } {
  const d = new Date(Number(ns / 1_000_000n));
  let y = d.getFullYear();
  if (Number.isNaN(y) || y < 1980) return { time: 0, date: (0 << 9) | (1 << 5) | 1 };
  if (y > 2107) y = 2107;
  return { time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1), date: ((y - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate() };
}

/** The extended timestamp (UT: mtime in Unix seconds) and Info-ZIP Unix owner (ux) fields. */
function unixExtras(m: ZipMember): Buffer {
  const parts: Buffer[] = [];
  const secs = m.mtimeNs / 1_000_000_000n - (m.mtimeNs < 0n && m.mtimeNs % 1_000_000_000n !== 0n ? 1n : 0n);
  if (secs >= -0x80000000n && secs <= 0x7fffffffn) {
    const ut = Buffer.alloc(9);
    ut.writeUInt16LE(0x5455, 0);
    ut.writeUInt16LE(5, 2);
    ut.writeUInt8(1, 4);
    ut.writeInt32LE(Number(secs), 5);
    parts.push(ut);
  }
  const ux = Buffer.alloc(15);
  ux.writeUInt16LE(0x7875, 0);
  ux.writeUInt16LE(11, 2);
  ux.writeUInt8(1, 4);
  ux.writeUInt8(4, 5);
  ux.writeUInt32LE(m.uid >>> 0, 6);
  ux.writeUInt8(4, 10);
  ux.writeUInt32LE(m.gid >>> 0, 11);
  parts.push(ux);
  return Buffer.concat(parts);
}

function zip64Extra(values: bigint[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(v, 4 + 8 * i));
  return b;
}

interface Entry {
  m: ZipMember;
  method: number;
  flags: number;
  crc: number;
  compressed: number;
  size: number;
  offset: number;
  zip64: boolean;
}

/**
 * Deflate settings for a member of `n` bytes in memory: level 1, with a window no larger than the
 * data (a longer one finds nothing more) and a hash table to match. zlib's defaults allocate
 * 256 KiB per call, and 20,000 small files meant 20,000 such allocations of the C heap, whose
 * freed pages glibc keeps: a zip of 20,000 files of 4 KiB peaked 26 MiB above the tar. The
 * stream is raw deflate either way (every inflater reads it with its 32 KiB window).
 */
export function deflateFor(n: number): { level: number; windowBits: number; memLevel: number } {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(n))));
  return { level: 1, windowBits, memLevel: Math.max(1, Math.min(8, windowBits - 7)) };
}

export class ZipWriter {
  private offset = 0;
  private count = 0;
  private readonly dir: string;
  private readonly central: number;
  private centralSize = 0;

  /** `zip64From`: plaintext size from which entries are zip64 (lowered by tests). */
  constructor(
    private readonly sink: Sink,
    private readonly zip64From = ZIP64_FROM,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'lafs-backup-zip-'));
    this.central = openSync(join(this.dir, 'central'), 'wx', 0o600);
  }

  private async out(b: Buffer): Promise<void> {
    if (!b.length) return;
    this.offset += b.length;
    await this.sink(b);
  }

  private localHeader(e: Entry, known: boolean): Buffer {
    const name = e.m.path;
    const { time, date } = dosTime(e.m.mtimeNs);
    const extra = Buffer.concat([e.zip64 ? zip64Extra(known ? [BigInt(e.size), BigInt(e.compressed)] : [0n, 0n]) : Buffer.alloc(0), unixExtras(e.m)]);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(e.zip64 ? 45 : 20, 4);
    h.writeUInt16LE(e.flags, 6);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt16LE(time, 10);
    h.writeUInt16LE(date, 12);
    h.writeUInt32LE(known ? e.crc >>> 0 : 0, 14);
    h.writeUInt32LE(e.zip64 ? U32 : known ? e.compressed : 0, 18);
    h.writeUInt32LE(e.zip64 ? U32 : known ? e.size : 0, 22);
    h.writeUInt16LE(name.length, 26);
    h.writeUInt16LE(extra.length, 28);
    return Buffer.concat([h, name, extra]);
  }

  private entry(m: ZipMember, method: number, descriptor: boolean, size: number): Entry {
    const flags = (descriptor ? 0x0008 : 0) | (isUtf8(m.path) ? 0x0800 : 0);
    return { m, method, flags, crc: 0, compressed: 0, size, offset: this.offset, zip64: size >= this.zip64From };
  }

  /** A directory, or a member whose contents are in memory (a symlink's target, a small file). */
  async whole(m: ZipMember, data: Buffer = Buffer.alloc(0)): Promise<void> {
    const path = m.type === 'dir' && m.path[m.path.length - 1] !== 0x2f ? Buffer.concat([m.path, Buffer.from('/')]) : m.path;
    const member = { ...m, path };
    const deflated = m.type === 'file' && data.length > 64 ? deflateRawSync(data, deflateFor(data.length)) : undefined;
    const use = deflated && deflated.length < data.length ? deflated : undefined;
    const e = this.entry(member, use ? 8 : 0, false, data.length);
    e.crc = crc32(data);
    e.compressed = (use ?? data).length;
    await this.out(this.localHeader(e, true));
    await this.out(use ?? data);
    this.record(e);
  }

  /** A file of `size` bytes streamed from `body` (deflated; sizes and CRC in a data descriptor). `body` must give exactly `size` bytes. */
  async stream(m: ZipMember, size: number, body: AsyncIterable<Buffer>): Promise<void> {
    const e = this.entry(m, 8, true, size);
    await this.out(this.localHeader(e, false));
    const deflate = createDeflateRaw({ level: 1, chunkSize: 64 * 1024 });
    let crc = 0;
    let seen = 0;
    const pump = (async () => {
      for await (const c of deflate as AsyncIterable<Buffer>) {
        e.compressed += c.length;
        await this.out(c);
      }
    })();
    try {
      for await (const chunk of body) {
        seen += chunk.length;
        if (seen > size) throw new MemberSizeError(seen, size);
        crc = crc32(chunk, crc);
        if (!deflate.write(chunk)) await once(deflate, 'drain');
      }
      if (seen !== size) throw new MemberSizeError(seen, size);
      deflate.end();
      await pump;
    } catch (err) {
      deflate.destroy();
      await pump.catch(() => undefined);
      throw err;
    }
    e.crc = crc;
    const d = Buffer.alloc(e.zip64 ? 24 : 16);
    d.writeUInt32LE(0x08074b50, 0);
    d.writeUInt32LE(crc >>> 0, 4);
    if (e.zip64) {
      d.writeBigUInt64LE(BigInt(e.compressed), 8);
      d.writeBigUInt64LE(BigInt(size), 16);
    } else {
      d.writeUInt32LE(e.compressed, 8);
      d.writeUInt32LE(size, 12);
    }
    await this.out(d);
    this.record(e);
  }

  /** The member's central directory record, spooled. */
  private record(e: Entry): void {
    const big = e.zip64 || e.offset >= U32 || e.compressed >= U32;
    const z: bigint[] = [];
    if (big) z.push(BigInt(e.size), BigInt(e.compressed));
    if (e.offset >= U32) z.push(BigInt(e.offset));
    const extra = Buffer.concat([z.length ? zip64Extra(z) : Buffer.alloc(0), unixExtras(e.m)]);
    const type = e.m.type === 'dir' ? S_IFDIR : e.m.type === 'symlink' ? S_IFLNK : S_IFREG;
    const mode = e.m.type === 'symlink' ? 0o777 : e.m.mode & 0o7777;
    const { time, date } = dosTime(e.m.mtimeNs);
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE((3 << 8) | 63, 4);
    h.writeUInt16LE(big || e.offset >= U32 ? 45 : 20, 6);
    h.writeUInt16LE(e.flags, 8);
    h.writeUInt16LE(e.method, 10);
    h.writeUInt16LE(time, 12);
    h.writeUInt16LE(date, 14);
    h.writeUInt32LE(e.crc >>> 0, 16);
    h.writeUInt32LE(big ? U32 : e.compressed, 20);
    h.writeUInt32LE(big ? U32 : e.size, 24);
    h.writeUInt16LE(e.m.path.length, 28);
    h.writeUInt16LE(extra.length, 30);
    h.writeUInt32LE((((type | mode) << 16) | (e.m.type === 'dir' ? 0x10 : 0)) >>> 0, 38);
    h.writeUInt32LE(e.offset >= U32 ? U32 : e.offset, 42);
    const rec = Buffer.concat([h, e.m.path, extra]);
    writeSync(this.central, rec);
    this.centralSize += rec.length;
    this.count++;
  }

  /** Writes the central directory and its end records (zip64 ones when needed), and removes the spool. */
  async end(): Promise<void> {
    try {
      closeSync(this.central);
      const start = this.offset;
      for await (const c of createReadStream(join(this.dir, 'central'))) await this.out(c as Buffer);
      const size = this.centralSize;
      const zip64 = this.count >= 0xffff || start >= U32 || size >= U32;
      if (zip64) {
        const rec = Buffer.alloc(56);
        rec.writeUInt32LE(0x06064b50, 0);
        rec.writeBigUInt64LE(44n, 4);
        rec.writeUInt16LE((3 << 8) | 63, 12);
        rec.writeUInt16LE(45, 14);
        rec.writeBigUInt64LE(BigInt(this.count), 24);
        rec.writeBigUInt64LE(BigInt(this.count), 32);
        rec.writeBigUInt64LE(BigInt(size), 40);
        rec.writeBigUInt64LE(BigInt(start), 48);
        const at = this.offset;
        await this.out(rec);
        const loc = Buffer.alloc(20);
        loc.writeUInt32LE(0x07064b50, 0);
        loc.writeBigUInt64LE(BigInt(at), 8);
        loc.writeUInt32LE(1, 16);
        await this.out(loc);
      }
      const eocd = Buffer.alloc(22);
      eocd.writeUInt32LE(0x06054b50, 0);
      eocd.writeUInt16LE(zip64 ? 0xffff : this.count, 8);
      eocd.writeUInt16LE(zip64 ? 0xffff : this.count, 10);
      eocd.writeUInt32LE(zip64 ? U32 : size, 12);
      eocd.writeUInt32LE(zip64 ? U32 : start, 16);
      await this.out(eocd);
    } finally {
      this.dispose();
    }
  }

  /** Removes the spool (also when the archive is abandoned). */
  dispose(): void {
    try {
      closeSync(this.central);
    } catch {
      // closed already
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A member's contents were not the size its header gave: the archive cannot be finished. */
export class MemberSizeError extends Error {
  constructor(
    readonly got: number,
    readonly expected: number,
  ) {
    super(got > expected ? `its contents are longer than the ${expected} bytes its size says` : `its contents ended after ${got} of the ${expected} bytes its size says`);
  }
}

