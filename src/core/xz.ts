/**
 * xz compression on the fly (lzma-native, single-threaded easy encoder: the same input and
 * options always give the same bytes, so the same file keeps the same cap).
 */
import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import type lzmaModule from 'lzma-native';
import { isMissingBinding, missingBinding } from '../errors.js';

// Loaded on first use: a run that compresses nothing does not pay for the native module.
let lzmaLoaded: typeof lzmaModule | undefined;
function lzma(): typeof lzmaModule {
  try {
    return (lzmaLoaded ??= createRequire(import.meta.url)('lzma-native') as typeof lzmaModule);
  } catch (e) {
    throw isMissingBinding(e) ? missingBinding('lzma-native') : e;
  }
}

export interface XzSettings {
  preset: number;
  extreme: boolean;
  check: 'crc32' | 'crc64' | 'sha256';
}

export function xzSettings(options: { preset?: number; extreme?: boolean; check?: XzSettings['check'] }): XzSettings {
  return { preset: options.preset ?? 6, extreme: options.extreme ?? false, check: options.check ?? 'crc64' };
}

/** The encoding's identity in cache keys: a change of options means a different upload. */
export function encodingId(s: XzSettings): string {
  return `xz:p${s.preset}${s.extreme ? 'e' : ''}:${s.check}`;
}

export function createXz(s: XzSettings): Transform {
  const l = lzma();
  const check = { crc32: l.CHECK_CRC32, crc64: l.CHECK_CRC64, sha256: l.CHECK_SHA256 }[s.check];
  return l.createCompressor({ preset: s.preset | (s.extreme ? l.PRESET_EXTREME : 0), check }) as unknown as Transform;
}

/** `synchronous`: decode on the calling thread (see restore/unxz.ts: no worker thread's malloc arena). */
export function createUnxz(opts: { synchronous?: boolean } = {}): Transform {
  return lzma().createDecompressor({ synchronous: opts.synchronous ?? false }) as unknown as Transform;
}
