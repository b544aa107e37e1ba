/**
 * File capabilities as stored in `security.capability` (struct vfs_cap_data, little endian):
 * u32 magic_etc (revision in the top byte, bit 0 = effective), then (permitted, inheritable)
 * u32 pairs — one pair in revision 1, two in revisions 2 and 3 — and, in revision 3, the
 * u32 root id of the user namespace the capabilities belong to.
 *
 * As text: libcap's form exactly as `getcap -n` prints it (`cap_net_raw=ep`, `=ep`,
 * `cap_chown,cap_kill+i cap_net_raw=ep`, …, with ` [rootid=N]` for revision 3), so that what
 * the tool records can be checked against the system tools. In the queue, spaces become `;`.
 */
import { readFileSync } from 'node:fs';

export class CapabilityError extends Error {}

export const CAP_NAMES = [
  'cap_chown', 'cap_dac_override', 'cap_dac_read_search', 'cap_fowner', 'cap_fsetid', 'cap_kill', 'cap_setgid',
  'cap_setuid', 'cap_setpcap', 'cap_linux_immutable', 'cap_net_bind_service', 'cap_net_broadcast', 'cap_net_admin',
  'cap_net_raw', 'cap_ipc_lock', 'cap_ipc_owner', 'cap_sys_module', 'cap_sys_rawio', 'cap_sys_chroot', 'cap_sys_ptrace',
  'cap_sys_pacct', 'cap_sys_admin', 'cap_sys_boot', 'cap_sys_nice', 'cap_sys_resource', 'cap_sys_time',
  'cap_sys_tty_config', 'cap_mknod', 'cap_lease', 'cap_audit_write', 'cap_audit_control', 'cap_setfcap',
  'cap_mac_override', 'cap_mac_admin', 'cap_syslog', 'cap_wake_alarm', 'cap_block_suspend', 'cap_audit_read',
  'cap_perfmon', 'cap_bpf', 'cap_checkpoint_restore',
];

const MAX_BITS = 64;
// libcap's flag bits (1 << CAP_EFFECTIVE, 1 << CAP_PERMITTED, 1 << CAP_INHERITABLE): their
// values decide the order of the clauses in the text.
const EFF = 1;
const PER = 2;
const INH = 4;
const REV1 = 0x01000000;
const REV2 = 0x02000000;
const REV3 = 0x03000000;

export interface FileCaps {
  permitted: bigint;
  inheritable: bigint;
  effective: boolean;
  /** Revision 3 only: the root id of the owning user namespace. */
  rootid?: number;
}

let knownBits: number | undefined;
/** The capabilities the running kernel knows (libcap's cap_max_bits): "all" means these. */
export function capMaxBits(): number {
  if (knownBits === undefined) {
    try {
      knownBits = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()) + 1;
    } catch {
      knownBits = CAP_NAMES.length;
    }
  }
  return knownBits;
}

export function decodeCaps(blob: Buffer): FileCaps {
  if (blob.length < 4) throw new CapabilityError(`malformed (${blob.length} bytes)`);
  const magic = blob.readUInt32LE(0);
  const revision = magic & 0xff000000;
  const effective = (magic & EFF) !== 0;
  if (magic & 0x00fffffe) throw new CapabilityError(`unknown flags 0x${(magic & 0xffffff).toString(16)}`);
  const want = revision === REV1 ? 12 : revision === REV2 ? 20 : revision === REV3 ? 24 : -1;
  if (want < 0) throw new CapabilityError(`unknown revision 0x${(revision >>> 24).toString(16)}`);
  if (blob.length !== want) throw new CapabilityError(`revision ${revision >>> 24} needs ${want} bytes, got ${blob.length}`);
  const lo = (off: number) => BigInt(blob.readUInt32LE(off));
  const caps: FileCaps = { permitted: lo(4), inheritable: lo(8), effective };
  if (revision !== REV1) {
    caps.permitted |= lo(12) << 32n;
    caps.inheritable |= lo(16) << 32n;
  }
  if (revision === REV3) caps.rootid = blob.readUInt32LE(20);
  return caps;
}

export function encodeCaps(c: FileCaps): Buffer {
  const v3 = c.rootid !== undefined;
  const buf = Buffer.alloc(v3 ? 24 : 20);
  buf.writeUInt32LE(((v3 ? REV3 : REV2) | (c.effective ? EFF : 0)) >>> 0, 0);
  const mask = 0xffffffffn;
  buf.writeUInt32LE(Number(c.permitted & mask), 4);
  buf.writeUInt32LE(Number(c.inheritable & mask), 8);
  buf.writeUInt32LE(Number((c.permitted >> 32n) & mask), 12);
  buf.writeUInt32LE(Number((c.inheritable >> 32n) & mask), 16);
  if (v3) buf.writeUInt32LE(c.rootid!, 20);
  return buf;
}

function flagsOf(c: FileCaps, n: number): number {
  const bit = 1n << BigInt(n);
  const p = (c.permitted & bit) !== 0n;
  const i = (c.inheritable & bit) !== 0n;
  // A file's effective set is one flag: when set, every permitted or inheritable bit is raised.
  return (p ? PER : 0) | (i ? INH : 0) | (c.effective && (p || i) ? EFF : 0);
}

const letters = (f: number) => `${f & EFF ? 'e' : ''}${f & INH ? 'i' : ''}${f & PER ? 'p' : ''}`;
const capName = (n: number) => CAP_NAMES[n] ?? String(n);

/** libcap's cap_to_text, for file capabilities (plus ` [rootid=N]` as `getcap -n` prints). */
export function capsToText(c: FileCaps, maxBits = capMaxBits()): string {
  const histo = new Array<number>(8).fill(0);
  for (let n = 0; n < maxBits; n++) histo[flagsOf(c, n)]!++;
  // The prevailing combination; ties go to the lower one (the empty set first).
  let m = 7;
  for (let t = 6; t >= 0; t--) if (histo[t]! >= histo[m]!) m = t;
  let base = `=${letters(m)}`;
  let out = '';
  for (let t = 7; t >= 0; t--) {
    if (t === m || !histo[t]) continue;
    let clause = ' ';
    const names: string[] = [];
    for (let n = 0; n < maxBits; n++) if (flagsOf(c, n) === t) names.push(capName(n));
    clause += names.join(',');
    const add = t & ~m;
    if (add) {
      let op = '+';
      if (out === '' && base === '=') {
        // libcap writes "= foo+ep" as "foo=ep".
        base = '';
        clause = clause.slice(1);
        op = '=';
      }
      clause += op + letters(add);
    }
    const drop = ~t & m & 7;
    if (drop) clause += `-${letters(drop)}`;
    out += clause;
  }
  // Bits the kernel does not name: always listed with what they add.
  const extra = new Map<number, number[]>();
  for (let n = maxBits; n < MAX_BITS; n++) {
    const f = flagsOf(c, n);
    if (f) extra.set(f, [...(extra.get(f) ?? []), n]);
  }
  for (let t = 7; t >= 1; t--) {
    const bits = extra.get(t);
    if (bits) out += ` ${bits.map(capName).join(',')}+${letters(t)}`;
  }
  let text = (base + out).replace(/^ /, '');
  if (c.rootid !== undefined) text += ` [rootid=${c.rootid}]`;
  return text;
}

/** Parses libcap text (and our ` [rootid=N]`) back into file capabilities. */
export function textToCaps(text: string, maxBits = capMaxBits()): FileCaps {
  const caps: FileCaps = { permitted: 0n, inheritable: 0n, effective: false };
  let eff = 0n;
  const all = (1n << BigInt(maxBits)) - 1n;
  for (const clause of text.trim().split(/\s+/)) {
    const root = /^\[rootid=(\d+)\]$/.exec(clause);
    if (root) {
      caps.rootid = Number(root[1]);
      continue;
    }
    const m = /^([a-z0-9_,]*)((?:[=+-][eip]*)+)$/.exec(clause);
    if (!m) throw new CapabilityError(`bad capability clause ${JSON.stringify(clause)}`);
    let set = 0n;
    if (m[1] === '' || m[1] === 'all') set = all;
    else {
      for (const name of m[1]!.split(',')) {
        const n = /^\d+$/.test(name) ? Number(name) : CAP_NAMES.indexOf(name);
        if (n < 0 || n >= MAX_BITS) throw new CapabilityError(`unknown capability ${JSON.stringify(name)}`);
        set |= 1n << BigInt(n);
      }
    }
    for (const [, op, flags] of m[2]!.matchAll(/([=+-])([eip]*)/g)) {
      const apply = (has: boolean, cur: bigint) => (op === '-' ? (has ? cur & ~set : cur) : op === '+' ? (has ? cur | set : cur) : has ? cur | set : cur & ~set);
      caps.permitted = apply(flags!.includes('p'), caps.permitted);
      caps.inheritable = apply(flags!.includes('i'), caps.inheritable);
      eff = apply(flags!.includes('e'), eff);
    }
  }
  if (eff !== 0n) {
    if (eff !== (caps.permitted | caps.inheritable)) {
      throw new CapabilityError('file capabilities: the effective set must be empty or exactly the permitted and inheritable ones');
    }
    caps.effective = true;
  }
  return caps;
}
