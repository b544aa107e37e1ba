/**
 * Sets and maps of caps in compact memory, for walks that remember what they have seen across
 * many backups (find's subtrees without a match, stats' contents per series). A cap is kept as
 * the first 16 bytes of its SHA-256, in typed arrays with open addressing: 32 bytes an entry at
 * the worst load, against ~150 for the cap as a string in a Set — a million caps in 32 MB.
 */
import { createHash } from 'node:crypto';

/** The 16-byte digest of `text` (a cap, or a cap and a path). */
export function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest().subarray(0, 16);
}

export class DigestMap {
  private words: Uint32Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  constructor(initial = 1024) {
    let n = 16;
    while (n < initial * 2) n *= 2;
    this.words = new Uint32Array(n * 4);
    this.vals = new Int32Array(n);
    this.mask = n - 1;
  }

  /** The slot of `d`: where it is, or the empty one where it would go. */
  private slot(d: Buffer): number {
    const a = d.readUInt32LE(0) | 1; // never all zero: an empty slot has a === 0
    const b = d.readUInt32LE(4);
    const c = d.readUInt32LE(8);
    const e = d.readUInt32LE(12);
    for (let i = (b ^ c) & this.mask; ; i = (i + 1) & this.mask) {
      const w = i * 4;
      const x = this.words[w]!;
      if (x === 0) return i;
      if (x === a >>> 0 && this.words[w + 1] === b && this.words[w + 2] === c && this.words[w + 3] === e) return i;
    }
  }

  private filled(i: number): boolean {
    return this.words[i * 4] !== 0;
  }

  has(d: Buffer): boolean {
    return this.filled(this.slot(d));
  }

  get(d: Buffer): number | undefined {
    const i = this.slot(d);
    return this.filled(i) ? this.vals[i] : undefined;
  }

  /** Sets `d` to `v`; true when `d` was not there before. */
  set(d: Buffer, v = 0): boolean {
    let i = this.slot(d);
    const fresh = !this.filled(i);
    if (fresh) {
      if ((this.size + 1) * 2 > this.vals.length) {
        this.grow();
        i = this.slot(d);
      }
      const w = i * 4;
      this.words[w] = (d.readUInt32LE(0) | 1) >>> 0;
      this.words[w + 1] = d.readUInt32LE(4);
      this.words[w + 2] = d.readUInt32LE(8);
      this.words[w + 3] = d.readUInt32LE(12);
      this.size++;
    }
    this.vals[i] = v;
    return fresh;
  }

  private grow(): void {
    const words = this.words;
    const vals = this.vals;
    const n = vals.length * 2;
    this.words = new Uint32Array(n * 4);
    this.vals = new Int32Array(n);
    this.mask = n - 1;
    const d = Buffer.alloc(16);
    for (let i = 0; i < vals.length; i++) {
      if (words[i * 4] === 0) continue;
      for (let k = 0; k < 4; k++) d.writeUInt32LE(words[i * 4 + k]!, k * 4);
      const j = this.slot(d);
      this.words.set(words.subarray(i * 4, i * 4 + 4), j * 4);
      this.vals[j] = vals[i]!;
    }
  }

  /** Bytes held. */
  get bytes(): number {
    return this.words.byteLength + this.vals.byteLength;
  }
}

/** A set of digests (a DigestMap whose values are not used). */
export class DigestSet {
  private readonly map = new DigestMap();

  has(d: Buffer): boolean {
    return this.map.has(d);
  }

  /** Adds `d`; true when it was not there before. */
  add(d: Buffer): boolean {
    return this.map.set(d);
  }

  get size(): number {
    return this.map.size;
  }
}
