/**
 * Reading an entry's extended metadata for a backup: POSIX ACLs and file capabilities (phase 1,
 * into the queue line) and `user.` extended attributes (phase 2, into the edge metadata).
 *
 * Degrading gracefully: without the addon, or on a filesystem without extended attributes,
 * one warning per run and the backup goes on without them. A blob that cannot be decoded is
 * left out with a warning naming the path; it never stops the walk.
 */
import { ConfigError, errnoCode, errnoError, resourceLimit } from '../errors.js';
import { log } from '../log.js';
import { aclsToText, AclError } from './acl.js';
import { capsToText, CapabilityError, decodeCaps } from './capability.js';
import { available, whyUnavailable } from '../native.js';
import { getXattr, listXattrs } from './xattr.js';

export const ACCESS_ACL = 'system.posix_acl_access';
export const DEFAULT_ACL = 'system.posix_acl_default';
export const CAPABILITY = 'security.capability';
/** All `user.` attributes of one entry together may take this much; beyond it they are left out. */
export const XATTR_LIMIT = 64 * 1024;

/** The warnings a set of readers has given (each once: one per run, not one per entry). */
export type Warned = Set<string>;

function warnOnce(warned: Warned, key: string, msg: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  log.warn(msg);
}

/**
 * A backup asked to keep extended metadata (`source.extended_metadata`) that cannot read it
 * fails before it starts (exit 2), naming the fix: without the addon, every night would drop
 * ACLs, capabilities and xattrs after one warning, and exit 0.
 */
export function assertMetadataReadable(): void {
  if (available()) return;
  throw new ConfigError(
    `source.extended_metadata: ACLs, file capabilities and xattrs cannot be backed up: the native addon is not built (${whyUnavailable()}); build it ("npm rebuild lafs-backup" where it is installed, "npm run build:native" in a checkout), or set source.extended_metadata: false to back up without them`,
  );
}

/**
 * Where an entry whose metadata could not be read whole is told (its path): the backup counts
 * them (they make it incomplete). Each reader below takes its own; none is kept here.
 */
export type MetaTrouble = (abs: Buffer) => void;

const ignore: MetaTrouble = () => {};

function display(abs: Buffer): string {
  return JSON.stringify(abs.toString('utf8'));
}

/**
 * The names listed for the entry (bytes as latin1 text, so they map back to the same bytes).
 * `listed`: what the walk's directory scan already listed (the names NUL-separated, or a
 * negative errno), taken as the call's answer.
 */
function names(trouble: MetaTrouble, warned: Warned, abs: Buffer, listed?: Buffer | number): string[] | undefined {
  if (!available()) {
    warnOnce(warned, 'addon', `extended attributes (ACLs, capabilities, xattrs) are not backed up: ${whyUnavailable()} (run "npm rebuild lafs-backup" where it is installed, or "npm run build:native" in a checkout)`);
    return undefined;
  }
  try {
    if (typeof listed === 'number') throw errnoError(-listed, 'llistxattr');
    if (listed) return splitNames(listed);
    return listXattrs(abs).map((n) => n.toString('latin1'));
  } catch (e) {
    const code = errnoCode(e);
    const limit = resourceLimit(e, `reading the extended attributes of ${display(abs)}`);
    if (limit) throw limit;
    if (code === 'ENOTSUP') warnOnce(warned, `enotsup`, `the filesystem of ${display(abs)} does not support extended attributes; going on without them there`);
    else if (code !== 'ENOENT') {
      trouble(abs);
      log.warn({ code }, `cannot list the extended attributes of ${display(abs)}; left out`);
    }
    return undefined;
  }
}

/** llistxattr's answer (names, each ending in NUL) as latin1 text names. */
function splitNames(raw: Buffer): string[] {
  if (!raw.length) return [];
  const text = raw.toString('latin1');
  return (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
}

function get(trouble: MetaTrouble, abs: Buffer, name: string): Buffer | undefined {
  try {
    return getXattr(abs, Buffer.from(name, 'latin1'));
  } catch (e) {
    const limit = resourceLimit(e, `reading ${name} of ${display(abs)}`);
    if (limit) throw limit;
    if (errnoCode(e) !== 'ENODATA') {
      trouble(abs);
      log.warn({ code: errnoCode(e) }, `cannot read ${name} of ${display(abs)}; left out`);
    }
    return undefined;
  }
}

/**
 * Phase 1: capabilities (queue form, spaces as ';') and ACLs of an entry; `listed`: its
 * attribute names as the walk's directory scan listed them, when it did (dir-scan.ts), so that
 * they are not listed again. `trouble` hears of each entry whose ACL or capabilities could not
 * be read.
 */
export function readAclsAndCaps(abs: Buffer, st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }, trouble: MetaTrouble = ignore, warned: Warned = new Set(), listed?: Buffer | number): { caps?: string; acls?: string } {
  if (st.isSymbolicLink()) return {};
  if (listed !== undefined && typeof listed !== 'number' && !listed.length) return {};
  const list = names(trouble, warned, abs, listed);
  if (!list?.length) return {};
  const out: { caps?: string; acls?: string } = {};
  const access = list.includes(ACCESS_ACL) ? get(trouble, abs, ACCESS_ACL) : undefined;
  const dflt = st.isDirectory() && list.includes(DEFAULT_ACL) ? get(trouble, abs, DEFAULT_ACL) : undefined;
  if (access || dflt) {
    try {
      out.acls = aclsToText(access, dflt);
    } catch (e) {
      if (!(e instanceof AclError)) throw e;
      trouble(abs);
      log.warn(`the ACL of ${display(abs)} cannot be decoded (${e.message}); left out`);
    }
  }
  const capBlob = st.isFile() && list.includes(CAPABILITY) ? get(trouble, abs, CAPABILITY) : undefined;
  if (capBlob) {
    try {
      out.caps = capsToText(decodeCaps(capBlob)).replace(/ /g, ';');
    } catch (e) {
      if (!(e instanceof CapabilityError)) throw e;
      trouble(abs);
      log.warn(`security.capability of ${display(abs)} cannot be decoded (${e.message}); left out`);
    }
  }
  return out;
}

/**
 * Phase 2: the `user.` extended attributes as {name: base64}, within `limit` bytes in all;
 * undefined when there are none, null when they could not all be read (left out, with a
 * warning, and `trouble` told — an answer not to be remembered: the next run reads them again).
 */
export function readUserXattrs(abs: Buffer, st: { isSymbolicLink(): boolean }, limit = XATTR_LIMIT, trouble: MetaTrouble = ignore, warned: Warned = new Set()): Record<string, string> | undefined | null {
  if (st.isSymbolicLink()) return undefined;
  let failed = false;
  const told: MetaTrouble = (p) => {
    failed = true;
    trouble(p);
  };
  const all = names(told, warned, abs);
  if (!all) return available() && !failed ? undefined : null;
  const list = all.filter((n) => n.startsWith('user.')).sort();
  if (!list.length) return undefined;
  const out: Record<string, string> = {};
  let size = 0;
  for (const name of list) {
    const value = get(told, abs, name);
    if (!value) continue;
    size += Buffer.byteLength(name) + value.length;
    if (size > limit) {
      trouble(abs);
      log.warn(`the user. extended attributes of ${display(abs)} take more than ${limit} bytes; left out`);
      return null;
    }
    out[Buffer.from(name, 'latin1').toString('utf8')] = value.toString('base64');
  }
  if (failed) return null;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The two readers of a backup (or of a diff's local side), telling `trouble` of each entry whose
 * metadata they could not read whole, and giving each warning about the whole run once.
 */
export function metadataReaders(trouble: MetaTrouble = ignore): {
  readAclsAndCaps: (abs: Buffer, st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }, listed?: Buffer | number) => { caps?: string; acls?: string };
  readUserXattrs: (abs: Buffer, st: { isSymbolicLink(): boolean }) => Record<string, string> | undefined | null;
} {
  const warned: Warned = new Set();
  return {
    readAclsAndCaps: (abs, st, listed) => readAclsAndCaps(abs, st, trouble, warned, listed),
    readUserXattrs: (abs, st) => readUserXattrs(abs, st, XATTR_LIMIT, trouble, warned),
  };
}
