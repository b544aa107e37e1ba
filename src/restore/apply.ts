/**
 * Putting an entry's metadata back on disk: owner (as root, unless told not to), mode, POSIX
 * ACLs, file capabilities (after chown, which clears them), user xattrs, and the mtime last.
 * What cannot be applied is reported with the path and counted; the restore goes on.
 */
import { chmodSync, lchownSync, lutimesSync } from 'node:fs';
import { describeErrno } from '../errors.js';
import { log } from '../log.js';
import type { EntryInfo } from '../browse/entry.js';
import { textToAcls } from '../meta/acl.js';
import { textToCaps, encodeCaps } from '../meta/capability.js';
import { ACCESS_ACL, CAPABILITY, DEFAULT_ACL } from '../meta/entry.js';
import { available, setXattr } from '../meta/xattr.js';

export interface ApplyOptions {
  owner: boolean;
  onTrouble: () => void;
}

function attempt(path: string, what: string, o: ApplyOptions, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    o.onTrouble();
    log.warn(`cannot set the ${what} of ${JSON.stringify(path)}: ${describeErrno(e)}`);
  }
}

let warnedAddon = false;

/** Applies `info` to the entry at `at` (named `shown` in messages). */
export function applyMeta(at: Buffer, shown: string, info: EntryInfo, o: ApplyOptions): void {
  if (o.owner && info.uid !== undefined && info.gid !== undefined) attempt(shown, 'owner', o, () => lchownSync(at, info.uid!, info.gid!));
  if (info.kind !== 'symlink') {
    if (info.mode !== undefined) attempt(shown, 'mode', o, () => chmodSync(at, info.mode!));
    const extended = info.acls || info.caps || info.xattrs;
    if (extended && !available()) {
      if (!warnedAddon) log.warn('ACLs, capabilities and xattrs are not restored: the extended-attribute addon is not built');
      warnedAddon = true;
      o.onTrouble();
    } else if (extended) {
      if (info.acls) {
        attempt(shown, 'ACL', o, () => {
          const acls = textToAcls(info.acls!);
          if (acls.access) setXattr(at, ACCESS_ACL, acls.access);
          if (acls.default && info.kind === 'dir') setXattr(at, DEFAULT_ACL, acls.default);
        });
      }
      if (info.caps && info.kind === 'file') attempt(shown, 'capabilities', o, () => setXattr(at, CAPABILITY, encodeCaps(textToCaps(info.caps!))));
      for (const [name, value] of Object.entries(info.xattrs ?? {})) {
        attempt(shown, name, o, () => setXattr(at, name, Buffer.from(value, 'base64')));
      }
    }
  }
  if (info.mtimeNs !== undefined) {
    // libuv's utimes keeps whole microseconds (it truncates): round to the nearest one first,
    // so the time set is within 1 µs of the one recorded (half a µs plus double rounding).
    const seconds = Number(info.mtimeNs / 1_000_000_000n) + (Number(info.mtimeNs % 1_000_000_000n) + 500) / 1e9;
    attempt(shown, 'mtime', o, () => lutimesSync(at, seconds, seconds));
  }
}
