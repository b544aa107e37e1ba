/**
 * Whether a file is worth compressing, decided as cheaply as possible and always the same way
 * for the same bytes and settings (so the same file keeps the same cap):
 *
 *  1. by rule and name: the user's `path_filter` rules first (first match decides), then the
 *     names of already-compressed formats (`compressed_names`), then `min_size`;
 *  2. by contents, for what is left: a sample (the first 32 KiB and the 32 KiB in the middle)
 *     is deflated at level 1, which runs at hundreds of MB/s; the file is compressed with xz
 *     only when each block shrinks by at least `min_saving`. Deflate is a conservative
 *     stand-in for xz: what deflate cannot shrink, xz shrinks by a few percent at best, at
 *     2 MiB/s;
 *  3. a small file read whole is stored raw when its xz form is not smaller.
 */
import { deflateRawSync } from 'node:zlib';
import { firstMatch, type Rule } from './rules.js';

export interface CompressionPolicy {
  enabled: boolean;
  minSize: number;
  /** `destination.encoding.xz.path_filter`. */
  rules: Rule[];
  /** `destination.encoding.xz.compressed_names`: stored raw unless a rule says otherwise. */
  compressedNames: Rule[];
  /**
   * The least fraction a sample must shrink by for the file to be compressed; null: every
   * file the rules, names and size select is compressed, unsampled (as before min_saving).
   */
  minSaving: number | null;
}

/**
 * What the name and size say: 'contents' (ask the contents), or stored raw 'by-name' (a
 * rule or an already-compressed format), 'by-size' (below `min_size`), 'off' (xz disabled).
 */
export type Choice = 'contents' | 'by-name' | 'by-size' | 'off';

/** The choice for a file (`/rel/path`, `size` bytes). */
export function compressionChoice(p: CompressionPolicy, path: string, size: number): Choice {
  if (!p.enabled) return 'off';
  const rule = firstMatch(p.rules, path);
  if (rule && !rule.include) return 'by-name';
  if (!rule && firstMatch(p.compressedNames, path)) return 'by-name';
  return size >= (rule?.minSize ?? p.minSize) ? 'contents' : 'by-size';
}

/**
 * Whether runs from before `compressed_names` existed stored this file as xz (its name is on
 * the list, no rule names it, and it is big enough): their cache rows are still good.
 */
export function keptXzBefore(p: CompressionPolicy, path: string, size: number): boolean {
  return p.enabled && size >= p.minSize && !firstMatch(p.rules, path) && firstMatch(p.compressedNames, path) !== undefined;
}

/** A sample block: deflate's window, enough to see whether data repeats itself. */
export const SAMPLE = 32 * 1024;

/** Where the sample of a file of `size` bytes lies: [offset, length] of each block. */
export function sampleBlocks(size: number): [number, number][] {
  if (size <= 2 * SAMPLE) return [[0, size]];
  const middle = Math.floor(size / 2 / 4096) * 4096;
  return [
    [0, SAMPLE],
    [middle, SAMPLE],
  ];
}

/** The sample of contents held whole (a small file). */
export function sampleOf(data: Buffer): Buffer[] {
  return sampleBlocks(data.length).map(([at, len]) => data.subarray(at, at + len));
}

/**
 * Whether every block of the sample shrinks by at least `minSaving` (deflate level 1); null:
 * always. The first block that does not ends the test: random data costs one block.
 */
export function samplePays(sample: Buffer[], minSaving: number | null): boolean {
  if (minSaving === null) return true;
  let any = false;
  for (const block of sample) {
    if (!block.length) continue;
    if (deflateRawSync(block, { level: 1 }).length > block.length * (1 - minSaving)) return false;
    any = true;
  }
  return any;
}
