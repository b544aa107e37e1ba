/** ACL and capability codecs on hand-made blobs: each revision, malformed input, round trips. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aclsToText, AclError, decodeAcl, encodeAcl, textToAcls, type AclEntry } from '../../src/meta/acl.js';
import { capsToText, CapabilityError, decodeCaps, encodeCaps, textToCaps } from '../../src/meta/capability.js';

function blob(...words: number[]): Buffer {
  const b = Buffer.alloc(words.length * 4);
  words.forEach((w, i) => b.writeUInt32LE(w >>> 0, i * 4));
  return b;
}

describe('security.capability', () => {
  const NET_RAW = 1 << 13;
  it('decodes revision 1 (32-bit sets), 2 (64-bit) and 3 (with the namespace root id)', () => {
    expect(capsToText(decodeCaps(blob(0x01000001, NET_RAW, 0)))).toBe('cap_net_raw=ep');
    expect(capsToText(decodeCaps(blob(0x02000000, NET_RAW, 1 << 5, 0, 0)))).toBe('cap_kill=i cap_net_raw+p');
    expect(capsToText(decodeCaps(blob(0x03000001, NET_RAW, 0, 0, 0, 1000)))).toBe('cap_net_raw=ep [rootid=1000]');
    // Bits above 31 live in the second pair (cap_perfmon is 38, cap_bpf 39).
    expect(capsToText(decodeCaps(blob(0x02000000, 0, 0, (1 << 6) | (1 << 7), 0)))).toBe('cap_perfmon,cap_bpf=p');
  });

  it('writes "all" as =ep, and what differs from the prevailing set as + and - clauses', () => {
    const all = (1n << 41n) - 1n;
    expect(capsToText({ permitted: all, inheritable: 0n, effective: true }, 41)).toBe('=ep');
    expect(capsToText({ permitted: all & ~(1n << 13n), inheritable: 0n, effective: true }, 41)).toBe('=ep cap_net_raw-ep');
    expect(capsToText({ permitted: 0n, inheritable: 0n, effective: false }, 41)).toBe('=');
  });

  it('refuses malformed blobs with a reason, never crashes', () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(0), /malformed \(0 bytes\)/],
      [blob(0x02000000, 1, 2), /revision 2 needs 20 bytes, got 12/],
      [blob(0x01000000, 1, 2, 3, 4), /revision 1 needs 12 bytes, got 20/],
      [blob(0x03000000, 1, 2, 3, 4), /revision 3 needs 24 bytes, got 20/],
      [blob(0x04000000, 1, 2, 3, 4), /unknown revision 0x4/],
      [blob(0x02000100, 1, 2, 3, 4), /unknown flags 0x100/],
    ];
    for (const [b, re] of cases) {
      expect(() => decodeCaps(b)).toThrow(CapabilityError);
      expect(() => decodeCaps(b)).toThrow(re);
    }
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
      try {
        decodeCaps(Buffer.from(bytes));
      } catch (e) {
        expect(e).toBeInstanceOf(CapabilityError);
      }
    }), { numRuns: 2000 });
  });

  it('text → blob → text round-trips any valid set', () => {
    const set = fc.bigInt({ min: 0n, max: (1n << 41n) - 1n });
    fc.assert(fc.property(set, set, fc.boolean(), fc.option(fc.nat({ max: 2 ** 31 }), { nil: undefined }), (p, i, e, rootid) => {
      const caps = { permitted: p, inheritable: i, effective: e && (p | i) !== 0n, rootid };
      const text = capsToText(caps, 41);
      const back = textToCaps(text, 41);
      expect(back).toEqual(caps);
      expect(decodeCaps(encodeCaps(back))).toEqual(caps);
    }), { numRuns: 1000 });
  });
});

describe('POSIX ACLs', () => {
  const entry = (tag: number, perm: number, id?: number): AclEntry => (id === undefined ? { tag, perm } : { tag, perm, id });

  it('decodes the kernel format to abbreviated numeric text; a mode-only ACL says nothing', () => {
    const acl = encodeAcl([entry(0x01, 6), entry(0x02, 7, 1000), entry(0x04, 4), entry(0x08, 4, 50), entry(0x10, 7), entry(0x20, 4)]);
    expect(aclsToText(acl, undefined)).toBe('u::rw-,u:1000:rwx,g::r--,g:50:r--,m::rwx,o::r--');
    expect(aclsToText(encodeAcl([entry(0x01, 7), entry(0x04, 5), entry(0x20, 5)]), undefined)).toBeUndefined();
    expect(aclsToText(undefined, encodeAcl([entry(0x01, 7), entry(0x04, 5), entry(0x20, 0)]))).toBe('d:u::rwx,d:g::r-x,d:o::---');
  });

  it('refuses malformed blobs with a reason', () => {
    expect(() => decodeAcl(Buffer.from([2, 0, 0]))).toThrow(AclError);
    expect(() => decodeAcl(blob(3))).toThrow(/unknown ACL version 3/);
    expect(() => decodeAcl(Buffer.concat([blob(2), Buffer.from([0x40, 0, 7, 0, 0, 0, 0, 0])]))).toThrow(/unknown ACL entry tag 0x40/);
    expect(() => textToAcls('u::rwz')).toThrow(/bad ACL entry/);
    expect(() => textToAcls('m:5:rwx')).toThrow(/bad ACL entry/);
  });

  it('text → blobs → text round-trips', () => {
    const perm = fc.integer({ min: 0, max: 7 });
    const named = fc.array(fc.tuple(fc.constantFrom(0x02, 0x08), fc.nat({ max: 65535 }), perm), { maxLength: 5 });
    fc.assert(fc.property(perm, perm, perm, named, fc.boolean(), (u, g, o, extra, withDefault) => {
      const ids = new Set<string>();
      const uniq = extra.filter(([t, id]) => !ids.has(`${t}:${id}`) && ids.add(`${t}:${id}`));
      const entries = [entry(0x01, u), entry(0x04, g), entry(0x20, o), ...uniq.map(([t, id, p]) => entry(t, p, id))];
      if (uniq.length) entries.push(entry(0x10, 7));
      const access = encodeAcl(entries);
      const dflt = withDefault ? encodeAcl([entry(0x01, 7), entry(0x04, 5), entry(0x20, 0)]) : undefined;
      const text = aclsToText(access, dflt);
      if (text === undefined) return;
      const back = textToAcls(text);
      expect(aclsToText(back.access, back.default)).toBe(text);
    }), { numRuns: 1000 });
  });
});
