/**
 * The queue file's line format: `PATH UID:GID:MODE[/CAPS[/ACLS]]`, one entry per line.
 *
 * PATH is relative to the source root (the root itself is the empty path, so its line starts
 * with a space) and is written as text a person can read: valid UTF-8 stays as it is, while
 * `\` becomes `\\`, a newline `\n`, and control bytes, invalid UTF-8 and a leading `#` become
 * `\xNN`. Decoding gives back exactly the bytes. MODE is the full st_mode in octal, empty for
 * a symlink. CAPS (libcap text, spaces written `;`) and ACLS (abbreviated, `,`-joined, `d:`
 * for default entries) never contain spaces or `/`, so the line splits at its last space.
 * Lines starting with `#` are comments (the file's header).
 */

export interface QueueEntry {
  /** Relative path bytes; empty for the root. */
  path: Buffer;
  uid: number;
  gid: number;
  /** Full st_mode; null for a symlink. */
  mode: number | null;
  caps?: string;
  acls?: string;
}

import { S_IFDIR, S_IFMT, S_IFREG } from '../core/file-type.js';
import { encodePath } from '../core/path-text.js';

/** PATH is path text (core/path-text.ts): the queue's users take it from here with the line format. */
export { encodePath };

export function isDirEntry(e: QueueEntry): boolean {
  return e.mode !== null && (e.mode & S_IFMT) === S_IFDIR;
}

export function isSymlinkEntry(e: QueueEntry): boolean {
  return e.mode === null;
}

export class QueueFormatError extends Error {}

export function decodePath(s: string): Buffer {
  if (!s.includes('\\')) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\\') continue;
    parts.push(Buffer.from(s.slice(start, i), 'utf8'));
    const e = s[i + 1];
    if (e === '\\') parts.push(Buffer.from([0x5c]));
    else if (e === 'n') parts.push(Buffer.from([0x0a]));
    else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      parts.push(Buffer.from([parseInt(s.slice(i + 2, i + 4), 16)]));
      i += 2;
    } else throw new QueueFormatError(`bad escape ${JSON.stringify(s.slice(i, i + 4))} in a path`);
    i++;
    start = i + 1;
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

export function formatLine(e: QueueEntry): string {
  let meta = `${e.uid}:${e.gid}:${e.mode === null ? '' : e.mode.toString(8)}`;
  if (e.caps !== undefined || e.acls !== undefined) meta += `/${e.caps ?? ''}`;
  if (e.acls !== undefined) meta += `/${e.acls}`;
  return `${encodePath(e.path)} ${meta}`;
}

const META = /^(\d+):(\d+):([0-7]*)(?:\/([^/ ]*)(?:\/([^/ ]*))?)?$/;

/** Parses one line (without its newline). Returns undefined for a comment or empty line. */
export function parseLine(line: string): QueueEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const sp = line.lastIndexOf(' ');
  if (sp < 0) throw new QueueFormatError('no space between path and metadata');
  const m = META.exec(line.slice(sp + 1));
  if (!m) throw new QueueFormatError(`bad metadata ${JSON.stringify(line.slice(sp + 1, sp + 41))} (want UID:GID:MODE[/CAPS[/ACLS]])`);
  const path = decodePath(line.slice(0, sp));
  checkRelative(path);
  if (!/^\d{1,10}$/.test(m[1]!) || !/^\d{1,10}$/.test(m[2]!) || Number(m[1]) > 0xffffffff || Number(m[2]) > 0xffffffff) {
    throw new QueueFormatError(`uid or gid out of range in ${JSON.stringify(line.slice(sp + 1, sp + 41))}`);
  }
  const entry: QueueEntry = {
    path,
    uid: Number(m[1]),
    gid: Number(m[2]),
    mode: m[3] === '' ? null : parseInt(m[3]!, 8),
  };
  if (m[4] !== undefined && m[4] !== '') entry.caps = m[4];
  if (m[5] !== undefined && m[5] !== '') entry.acls = m[5];
  if (entry.mode !== null) {
    const type = entry.mode & S_IFMT;
    if (type !== S_IFDIR && type !== S_IFREG) throw new QueueFormatError(`mode ${m[3]} is neither a directory nor a regular file`);
  }
  return entry;
}

/**
 * A queue path must stay beneath the source: relative, with no empty, `.` or `..` component
 * and no NUL — the queue is a file people edit, and phase 2 opens what it says.
 */
export function checkRelative(path: Buffer): void {
  if (path.length === 0) return;
  if (path.includes(0)) throw new QueueFormatError('the path contains a NUL byte');
  if (path[0] === 0x2f) throw new QueueFormatError(`the path ${JSON.stringify(encodePath(path))} is absolute (queue paths are relative to the source)`);
  let start = 0;
  for (;;) {
    const end = path.indexOf(0x2f, start);
    const part = path.subarray(start, end < 0 ? path.length : end);
    if (part.length === 0 || (part.length === 1 && part[0] === 0x2e) || (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e)) {
      throw new QueueFormatError(`the path ${JSON.stringify(encodePath(path))} has an empty, "." or ".." component (it must stay beneath the source)`);
    }
    if (end < 0) return;
    start = end + 1;
  }
}

/** The entry's parent path (`a/b` → `a`, `a` → empty, root → null). */
export function parentOf(path: Buffer): Buffer | null {
  if (path.length === 0) return null;
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 ? Buffer.alloc(0) : path.subarray(0, slash);
}

export function baseName(path: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 ? path : path.subarray(slash + 1);
}
