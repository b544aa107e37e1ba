/**
 * Path text: name bytes written as text a person can read — valid UTF-8 stays as it is, while
 * `\` becomes `\\`, a newline `\n`, and control bytes, invalid UTF-8 and a leading `#` become
 * `\xNN`. The queue file's PATH, a child's escaped name and every path in a log line use it;
 * `decodePath` (scan/queue-codec.ts) gives back exactly the bytes.
 */

const HEX = '0123456789abcdef';

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the bytes there are not one. */
function utf8Len(b: Buffer, i: number): number {
  const c = b[i]!;
  let n: number;
  let min: number;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) [n, min] = [2, 0x80];
  else if (c >= 0xe0 && c <= 0xef) [n, min] = [3, 0x800];
  else if (c >= 0xf0 && c <= 0xf4) [n, min] = [4, 0x10000];
  else return 0;
  if (i + n > b.length) return 0;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const cc = b[i + k]!;
    if ((cc & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

const PLAIN_ASCII = /^[\x20-\x5b\x5d-\x7e]*$/;

export function encodePath(p: Buffer): string {
  // Fast path: printable ASCII without backslash needs no escaping (but a leading '#' does).
  const latin1 = p.toString('latin1');
  if (PLAIN_ASCII.test(latin1) && latin1[0] !== '#') return latin1;
  let out = '';
  let plainStart = -1;
  const flush = (end: number) => {
    if (plainStart >= 0) out += p.toString('utf8', plainStart, end);
    plainStart = -1;
  };
  for (let i = 0; i < p.length; ) {
    const c = p[i]!;
    if (c === 0x5c) {
      flush(i);
      out += '\\\\';
      i++;
    } else if (c === 0x0a) {
      flush(i);
      out += '\\n';
      i++;
    } else if (c < 0x20 || c === 0x7f || (c === 0x23 && i === 0)) {
      flush(i);
      out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
      i++;
    } else {
      const n = utf8Len(p, i);
      if (n === 0) {
        flush(i);
        out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
        i++;
      } else {
        if (plainStart < 0) plainStart = i;
        i += n;
      }
    }
  }
  flush(p.length);
  return out;
}
