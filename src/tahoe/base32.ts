/** Tahoe's base32: RFC 4648 alphabet in lower case, no padding. */

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const LOOKUP = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

export function b32encode(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes; throws on a character outside the alphabet. Trailing partial bits are dropped. */
export function b32decode(text: string): Buffer {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const v = LOOKUP.get(ch);
    if (v === undefined) throw new Error('invalid base32 character');
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

export const B32_CHARS = '[a-z2-7]';
