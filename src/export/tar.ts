/**
 * POSIX pax tar headers (IEEE 1003.1-2001 `pax` format, as GNU tar and bsdtar read it), written
 * here rather than taken from tar-stream: a member's pax records must carry raw bytes — the
 * values of extended attributes and capabilities, names that are not UTF-8 — and times to the nanosecond, where tar-stream takes names and record values as strings and
 * times as Dates (milliseconds). The format is small: a 512-byte ustar header, preceded when
 * anything does not fit it by an `x` header whose data are `LEN key=value\n` records.
 *
 * Records written: `path`/`linkpath` (a name that does not fit ustar's fields or is not ASCII),
 * `mtime` always (seconds with nine decimals), `uid`/`gid`/`size` when too large for their
 * octal fields, `SCHILY.xattr.NAME` (user xattrs; `security.capability` for file capabilities,
 * its binary form), `SCHILY.acl.access` and `SCHILY.acl.default` (the long text form with
 * numeric ids, one entry a line, as GNU tar writes them). A name that is not UTF-8 goes into
 * `path` as its bytes, as GNU tar writes it (GNU tar ignores `hdrcharset=BINARY`, with a
 * warning; bsdtar takes the bytes too).
 */

export const BLOCK = 512;
/** GNU tar's default record: archives are padded to a multiple of it. */
export const RECORD = 20 * BLOCK;

export type TarType = 'file' | 'link' | 'symlink' | 'dir';

export interface TarMember {
  /** The member's path, as bytes (directories without a trailing slash: it is added). */
  path: Buffer;
  type: TarType;
  /** Permission bits (with setuid/setgid/sticky). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (files only). */
  size: number;
  /** Nanoseconds since the epoch (may be negative). */
  mtimeNs: bigint;
  /** Symlink target, or the path of the member a hard link names (bytes). */
  linkpath?: Buffer;
  /** Extended attributes by name (`user.*`, `security.capability`): raw values. */
  xattrs?: [string, Buffer][];
  /** ACLs as text in the long form, one entry a line (`user::rw-\nuser:1000:r-x\n…`). */
  aclAccess?: string;
  aclDefault?: string;
}

const TYPEFLAG: Record<TarType, string> = { file: '0', link: '1', symlink: '2', dir: '5' };
const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;
const NS = 1_000_000_000n;

/** A pax record: `LEN key=value\n`, LEN counting itself. */
function record(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** A time as pax writes it: a decimal number of seconds, nine decimals (negative: before 1970). */
export function paxTime(ns: bigint): string {
  const neg = ns < 0n;
  const a = neg ? -ns : ns;
  return `${neg ? '-' : ''}${a / NS}.${String(a % NS).padStart(9, '0')}`;
}

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c > 0x7e || c < 0x20) return false;
  return true;
}

/** Splits an ASCII path over ustar's prefix (155) and name (100) fields, if it fits. */
function ustarName(p: Buffer): { name: Buffer; prefix: Buffer } | undefined {
  if (!isAscii(p)) return undefined;
  if (p.length <= 100) return { name: p, prefix: Buffer.alloc(0) };
  for (let i = p.length - 1; i > 0; i--) {
    if (p[i] !== 0x2f) continue;
    if (i <= 155 && p.length - i - 1 <= 100 && p.length - i - 1 > 0) return { name: p.subarray(i + 1), prefix: p.subarray(0, i) };
    if (i < p.length - 101) break;
  }
  return undefined;
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

/** One 512-byte ustar header. */
function ustar(opts: { name: Buffer; prefix: Buffer; mode: number; uid: number; gid: number; size: number; mtime: number; type: string; linkname: Buffer }): Buffer {
  const h = Buffer.alloc(BLOCK);
  opts.name.copy(h, 0, 0, 100);
  octal(h, 100, 8, opts.mode);
  octal(h, 108, 8, opts.uid);
  octal(h, 116, 8, opts.gid);
  octal(h, 124, 12, opts.size);
  octal(h, 136, 12, opts.mtime);
  h.write('        ', 148, 8, 'ascii');
  h.write(opts.type, 156, 1, 'ascii');
  opts.linkname.copy(h, 157, 0, 100);
  h.write('ustar\x0000', 257, 8, 'ascii');
  opts.prefix.copy(h, 345, 0, 155);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

function padTo(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** The headers of `m` (a pax `x` header and its records when needed, then the ustar header). */
export function tarHeader(m: TarMember): Buffer {
  const path = m.type === 'dir' && m.path[m.path.length - 1] !== 0x2f ? Buffer.concat([m.path, Buffer.from('/')]) : m.path;
  const records: Buffer[] = [];
  const split = ustarName(path);
  if (!split) records.push(record('path', path));
  const link = m.linkpath ?? Buffer.alloc(0);
  const linkFits = isAscii(link) && link.length <= 100;
  if (!linkFits) records.push(record('linkpath', link));
  records.push(record('mtime', paxTime(m.mtimeNs)));
  if (m.uid > MAX_ID) records.push(record('uid', String(m.uid)));
  if (m.gid > MAX_ID) records.push(record('gid', String(m.gid)));
  const size = m.type === 'file' ? m.size : 0;
  if (size > MAX_SIZE) records.push(record('size', String(size)));
  if (m.aclAccess) records.push(record('SCHILY.acl.access', m.aclAccess));
  if (m.aclDefault) records.push(record('SCHILY.acl.default', m.aclDefault));
  for (const [name, value] of m.xattrs ?? []) records.push(record(`SCHILY.xattr.${name}`, value));
  const secs = m.mtimeNs < 0n ? 0 : Math.min(Number(m.mtimeNs / NS), 0o77777777777);
  const main = ustar({
    name: split?.name ?? asciiStub(path, 100),
    prefix: split?.prefix ?? Buffer.alloc(0),
    mode: m.type === 'symlink' ? 0o777 : m.mode & 0o7777,
    uid: Math.min(m.uid, MAX_ID),
    gid: Math.min(m.gid, MAX_ID),
    size: Math.min(size, MAX_SIZE),
    mtime: secs,
    type: TYPEFLAG[m.type],
    linkname: linkFits ? link : asciiStub(link, 100),
  });
  const data = Buffer.concat(records);
  const pax = ustar({ name: Buffer.concat([Buffer.from('PaxHeaders/'), asciiStub(path.subarray(Math.max(0, path.length - 80)), 80)]), prefix: Buffer.alloc(0), mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: secs, type: 'x', linkname: Buffer.alloc(0) });
  return Buffer.concat([pax, data, Buffer.alloc(padTo(data.length)), main]);
}

/** What a reader that ignores pax records sees instead of a name it cannot hold: ASCII, cut to fit. */
function asciiStub(b: Buffer, max: number): Buffer {
  const out = Buffer.from(b.toString('latin1').replace(/[^\x20-\x7e]/g, '_'), 'latin1');
  return out.subarray(0, max);
}

/** The zero bytes that end a member's data of `size` bytes (to the next block). */
export function dataPadding(size: number): Buffer {
  return Buffer.alloc(padTo(size));
}

/** The end of an archive of `written` bytes so far: two zero blocks, then zeros to a whole record. */
export function tarEnd(written: number): Buffer {
  const end = written + 2 * BLOCK;
  return Buffer.alloc(2 * BLOCK + ((RECORD - (end % RECORD)) % RECORD));
}

/** Our ACL text (`u::rwx,u:1000:r-x,…,d:g:5:rwx`) as tar's two long forms. */
export function tarAcls(acls: string): { access?: string; default?: string } {
  const words: Record<string, string> = { u: 'user', g: 'group', m: 'mask', o: 'other' };
  const access: string[] = [];
  const dflt: string[] = [];
  for (const part of acls.split(',')) {
    const m = /^(d:)?([ugmo]):(\d*):([r-][w-][x-])$/.exec(part);
    if (!m) continue;
    (m[1] ? dflt : access).push(`${words[m[2]!]}:${m[3]}:${m[4]}\n`);
  }
  return { access: access.length ? access.join('') : undefined, default: dflt.length ? dflt.join('') : undefined };
}
