/**
 * The native addon (native/), loaded once, here: xattr.c's raw extended-attribute calls on
 * paths, at.c's *at calls relative to a directory descriptor, never following a symlink, and
 * scan.c's one-call listing of a directory for phase 1's walk.
 * When it is not built, `available()` is false, `whyUnavailable()` says why, the xattr calls
 * throw ENOADDON and `atCalls()` is undefined: callers go on without extended metadata (after
 * one warning per run) or, for restore, refuse to run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import nodeGypBuild from 'node-gyp-build';

/** The extended-attribute calls of native/xattr.c (the l* calls: no symlink followed). */
export interface XattrCalls {
  list(path: Buffer): Buffer[];
  get(path: Buffer, name: string | Buffer): Buffer;
  set(path: Buffer, name: string | Buffer, value: Buffer, flags?: number): void;
  remove(path: Buffer, name: string | Buffer): void;
}

/** The *at calls of native/at.c: everything relative to a directory descriptor, no symlink followed. */
export interface AtCalls {
  /** openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): `rel` beneath `dirfd`, through no symlink. */
  openBeneath(dirfd: number, rel: Buffer, flags: number, mode?: number): number;
  mkdirat(dirfd: number, name: Buffer | string, mode: number): void;
  renameat(olddirfd: number, oldname: Buffer | string, newdirfd: number, newname: Buffer | string): void;
  unlinkat(dirfd: number, name: Buffer | string, flags: number): void;
  linkat(olddirfd: number, oldname: Buffer | string, newdirfd: number, newname: Buffer | string, flags: number): void;
  symlinkat(target: Buffer, dirfd: number, name: Buffer | string): void;
  fchownat(dirfd: number, name: Buffer | string, uid: number, gid: number, flags: number): void;
  /** Sets the mtime (atime left as it is); `name` null: of `dirfd` itself (futimens). */
  utimensat(dirfd: number, name: Buffer | string | null, seconds: bigint, nanoseconds: number, flags: number): void;
  fstatatMode(dirfd: number, name: Buffer | string, flags: number): number;
  /**
   * lstat of `name` in `dirfd` into `out` (mode, nlink, dev, ino, size, mtime ns, ctime ns, uid, gid):
   * 0; the errno when missing (ENOENT, ENOTDIR); -1 when a time does not fit 64-bit ns.
   */
  lstatAt(dirfd: number, name: Buffer, out: BigInt64Array): number;
  fsetxattr(fd: number, name: string | Buffer, value: Buffer, flags: number): void;
}

/** native/scan.c: one directory of phase 1's walk in one call (its result's layout is there and in scan/dir-scan.ts). */
export interface ScanCalls {
  /** The sorted entries with their lstat (and attribute names): an ArrayBuffer; the errno; -1 when more than `maxEntries`. */
  scanDir(path: Buffer, withXattrs: boolean, maxEntries: number, unchangedBefore: bigint): ArrayBuffer | number;
}

/** The length of lstatAt's `out` (mode, nlink, dev, ino, size, mtime ns, ctime ns, uid, gid). */
export const LSTAT_FIELDS = 9;

type Addon = XattrCalls & AtCalls & ScanCalls;

// The addon compiled here (native/build/Release), else the one built for this platform when the
// package was packed (native/prebuilds/PLATFORM-ARCH/node.napi.LIBC.node): node-gyp-build's rules.
// native/ sits beside src/ and dist/: one directory up from this module (src/native.ts, tsc's
// dist/native.js), two from the one-file command (dist/bin/lafs-backup.js) that carries it.
const NATIVE = ['../native', '../../native']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)))
  .find((dir) => existsSync(join(dir, 'binding.gyp')) || existsSync(join(dir, 'prebuilds'))) ?? fileURLToPath(new URL('../../native', import.meta.url));

let addon: Addon | null | undefined;
let loadError: string | undefined;

function load(): Addon | null {
  if (addon === undefined) {
    try {
      addon = nodeGypBuild(NATIVE) as Addon;
    } catch (e) {
      addon = null;
      loadError = (e as Error).message.split('\n')[0];
    }
  }
  return addon;
}

/** Whether the addon loads. */
export function available(): boolean {
  return load() !== null;
}

/** Why the addon does not load ('' when it does). */
export function whyUnavailable(): string {
  load();
  return loadError ?? '';
}

/** The extended-attribute calls; throws (code ENOADDON) when the addon is not built. */
export function xattrCalls(): XattrCalls {
  const a = load();
  if (!a) throw Object.assign(new Error(`the extended-attribute addon is not built: ${loadError}`), { code: 'ENOADDON' });
  return a;
}

/** The one-call directory scan, or undefined when the addon is not built. */
export function scanCalls(): ScanCalls | undefined {
  return load() ?? undefined;
}

/** The *at calls, or undefined (with the reason from whyUnavailable) when the addon is not built. */
export function atCalls(): AtCalls | undefined {
  return load() ?? undefined;
}
