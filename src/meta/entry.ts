/**
 * Reading an entry's extended metadata for a backup: POSIX ACLs and file capabilities (phase 1,
 * into the queue line) and `user.` extended attributes (phase 2, into the edge metadata).
 *
 * Degrading gracefully: without the addon, or on a filesystem without extended attributes,
 * one warning per run and the backup goes on without them. A blob that cannot be decoded is
 * left out with a warning naming the path; it never stops the walk.
 */
import { ConfigError, errnoCode, resourceLimit } from '../errors.js';
import { log } from '../log.js';
import { aclsToText, AclError } from './acl.js';
import { capsToText, CapabilityError, decodeCaps } from './capability.js';
import { available, getXattr, listXattrs, whyUnavailable } from './xattr.js';

export const ACCESS_ACL = 'system.posix_acl_access';
export const DEFAULT_ACL = 'system.posix_acl_default';
export const CAPABILITY = 'security.capability';
/** All `user.` attributes of one entry together may take this much; beyond it they are left out. */
export const XATTR_LIMIT = 64 * 1024;

const warned = new Set<string>();
function warnOnce(key: string, msg: string): void {
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

/** Entries whose metadata could not be fully read (for the run's summary and exit code). */
export const metaTrouble = { count: 0 };

function display(abs: Buffer): string {
  return JSON.stringify(abs.toString('utf8'));
}

/**
 * The names listed for the entry (bytes as latin1 text, so they map back to the same bytes).
 * `at` is what the call is given (a name relative to the working directory, or `abs`); `abs`
 * names the entry in warnings.
 */
function names(at: Buffer, abs: Buffer = at): string[] | undefined {
  if (!available()) {
    warnOnce('addon', `extended attributes (ACLs, capabilities, xattrs) are not backed up: ${whyUnavailable()} (run "npm rebuild lafs-backup" where it is installed, or "npm run build:native" in a checkout)`);
    return undefined;
  }
  try {
    return listXattrs(at).map((n) => n.toString('latin1'));
  } catch (e) {
    const code = errnoCode(e);
    const limit = resourceLimit(e, `reading the extended attributes of ${display(abs)}`);
    if (limit) throw limit;
    if (code === 'ENOTSUP') warnOnce(`enotsup`, `the filesystem of ${display(abs)} does not support extended attributes; going on without them there`);
    else if (code !== 'ENOENT') {
      metaTrouble.count++;
      log.warn({ code }, `cannot list the extended attributes of ${display(abs)}; left out`);
    }
    return undefined;
  }
}

function get(at: Buffer, name: string, abs: Buffer = at): Buffer | undefined {
  try {
    return getXattr(at, Buffer.from(name, 'latin1'));
  } catch (e) {
    const limit = resourceLimit(e, `reading ${name} of ${display(abs)}`);
    if (limit) throw limit;
    if (errnoCode(e) !== 'ENODATA') {
      metaTrouble.count++;
      log.warn({ code: errnoCode(e) }, `cannot read ${name} of ${display(abs)}; left out`);
    }
    return undefined;
  }
}

/**
 * Phase 1: capabilities (queue form, spaces as ';') and ACLs of an entry, read through `at`
 * (the walk gives the bare name while it is in the entry's directory: no lookup from /).
 */
export function readAclsAndCaps(abs: Buffer, st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }, at: Buffer = abs): { caps?: string; acls?: string } {
  if (st.isSymbolicLink()) return {};
  const list = names(at, abs);
  if (!list?.length) return {};
  const out: { caps?: string; acls?: string } = {};
  const access = list.includes(ACCESS_ACL) ? get(at, ACCESS_ACL, abs) : undefined;
  const dflt = st.isDirectory() && list.includes(DEFAULT_ACL) ? get(at, DEFAULT_ACL, abs) : undefined;
  if (access || dflt) {
    try {
      out.acls = aclsToText(access, dflt);
    } catch (e) {
      if (!(e instanceof AclError)) throw e;
      metaTrouble.count++;
      log.warn(`the ACL of ${display(abs)} cannot be decoded (${e.message}); left out`);
    }
  }
  const capBlob = st.isFile() && list.includes(CAPABILITY) ? get(at, CAPABILITY, abs) : undefined;
  if (capBlob) {
    try {
      out.caps = capsToText(decodeCaps(capBlob)).replace(/ /g, ';');
    } catch (e) {
      if (!(e instanceof CapabilityError)) throw e;
      metaTrouble.count++;
      log.warn(`security.capability of ${display(abs)} cannot be decoded (${e.message}); left out`);
    }
  }
  return out;
}

/**
 * Phase 2: the `user.` extended attributes as {name: base64}, within `limit` bytes in all;
 * undefined when there are none, null when they could not all be read (left out, with a
 * warning — an answer not to be remembered: the next run reads them again).
 */
export function readUserXattrs(abs: Buffer, st: { isSymbolicLink(): boolean }, limit = XATTR_LIMIT): Record<string, string> | undefined | null {
  if (st.isSymbolicLink()) return undefined;
  const trouble = metaTrouble.count;
  const all = names(abs);
  if (!all) return available() && metaTrouble.count === trouble ? undefined : null;
  const list = all.filter((n) => n.startsWith('user.')).sort();
  if (!list.length) return undefined;
  const out: Record<string, string> = {};
  let size = 0;
  for (const name of list) {
    const value = get(abs, name);
    if (!value) continue;
    size += Buffer.byteLength(name) + value.length;
    if (size > limit) {
      metaTrouble.count++;
      log.warn(`the user. extended attributes of ${display(abs)} take more than ${limit} bytes; left out`);
      return null;
    }
    out[Buffer.from(name, 'latin1').toString('utf8')] = value.toString('base64');
  }
  if (metaTrouble.count !== trouble) return null;
  return Object.keys(out).length ? out : undefined;
}
