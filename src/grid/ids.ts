/**
 * How the embedded grid makes caps. It encrypts nothing: these are stand-ins with the same
 * shapes and the same convergence as a real gateway's (same bytes → same cap on one grid),
 * derived from a per-grid secret with SHA-256.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { b32encode } from '../tahoe/base32.js';

export const LIT_THRESHOLD = 55;

function h(...parts: (string | Buffer)[]): Buffer {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest();
}

export interface ChkIds {
  key: string;
  ueb: string;
  si: string;
}

/** Convergent ids for immutable content whose SHA-256 is `contentHash`. */
export function chkIds(secret: Buffer, domain: 'file' | 'dir', contentHash: Buffer): ChkIds {
  const keyBytes = createHmac('sha256', secret).update(domain).update(contentHash).digest().subarray(0, 16);
  return {
    key: b32encode(keyBytes),
    ueb: b32encode(h('ueb', keyBytes, contentHash)),
    si: siFromKey(keyBytes),
  };
}

/** The storage index a read key maps to (both for CHK keys and mutable read keys). */
export function siFromKey(keyBytes: Buffer): string {
  return b32encode(h('storage-index', keyBytes).subarray(0, 16));
}

export interface MutableIds {
  writekey: string;
  readkey: string;
  si: string;
  fingerprint: string;
}

export function newMutableIds(): MutableIds {
  const write = randomBytes(16);
  const read = readKeyFor(write);
  return { writekey: b32encode(write), readkey: b32encode(read), si: siFromKey(read), fingerprint: b32encode(randomBytes(32)) };
}

export function readKeyFor(writekey: Buffer): Buffer {
  return h('read-key', writekey).subarray(0, 16);
}

export function serverId(secret: Buffer, index: number): string {
  return `v0-${b32encode(h('server', secret, String(index)))}`;
}

export function newSecret(): Buffer {
  return randomBytes(32);
}
