/** Cap parsing, classification, validation and redaction, on caps a real gateway produced. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redact, scrubCaps } from '../../src/core/redact.js';
import { assertDirCap, assertImmutableReadCap, assertWritableDirCap, parseCap, tryParseCap } from '../../src/tahoe/caps.js';
import { RECORDINGS_DIR } from '../support/recordings.js';

const recorded = new Set<string>();
for (const f of readdirSync(RECORDINGS_DIR).filter((f) => f.endsWith('.txt'))) {
  for (const m of readFileSync(join(RECORDINGS_DIR, f), 'utf8').matchAll(/URI:[A-Za-z0-9-]+:[a-z0-9:]*[a-z0-9]|URI:(?:LIT|DIR2-LIT):/g)) recorded.add(m[0]);
}

describe('caps', () => {
  it('parses every well-formed cap in the recordings, with the right kind', () => {
    const kinds = new Set<string>();
    for (const text of recorded) {
      if (/garbage|notacap|:key:|:key$/.test(text)) continue; // placeholders in the transcripts' prose
      const cap = tryParseCap(text);
      expect(cap, text).toBeDefined();
      expect(text.startsWith(`URI:${cap!.kind}:`)).toBe(true);
      kinds.add(cap!.kind);
    }
    for (const k of ['LIT', 'CHK', 'CHK-Verifier', 'DIR2-CHK', 'DIR2-CHK-Verifier', 'DIR2-LIT', 'DIR2', 'DIR2-RO', 'DIR2-Verifier']) expect(kinds).toContain(k);
  });

  it('classifies', () => {
    const chk = parseCap('URI:CHK:un76sm4rsegnakzy7m4jeeyova:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:2:4:1024');
    expect(chk).toMatchObject({ kind: 'CHK', isDir: false, isImmutable: true, isWrite: false, size: 1024, needed: 2, total: 4 });
    expect(parseCap('URI:LIT:nbswy3dpeb3w64tmmqfa')).toMatchObject({ kind: 'LIT', size: 12 });
    expect(parseCap('URI:DIR2-LIT:')).toMatchObject({ kind: 'DIR2-LIT', isDir: true, isImmutable: true });
    expect(parseCap('URI:DIR2:qi5mtylrkriv3kdg6afjdfgr54:dnryyavbqfhx6hhk2tdpd4k55zf7kjldusrzwr73j5bewtmzsafq')).toMatchObject({ isDir: true, isWrite: true, isImmutable: false });
  });

  it('rejects malformed caps with an error that shows only the redacted form', () => {
    for (const bad of ['URI:CHK:garbage', 'URI:CHK:notacap', 'garbage', '', 'URI:LIT:a', 'URI:CHK:un76sm4rsegnakzy7m4jeeyova:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:5:4:1024', 'URI:FOO:bar']) {
      expect(tryParseCap(bad), bad).toBeUndefined();
      expect(() => parseCap(bad, 'argument')).toThrow(/argument: not a valid Tahoe-LAFS cap/);
    }
    try {
      parseCap('URI:CHK:secretsecret', 'argument');
    } catch (e) {
      expect((e as Error).message).not.toContain('secretsecret');
      expect((e as Error).message).toContain(redact('URI:CHK:secretsecret'));
    }
  });

  it('checks what a cap may be used for', () => {
    const dir2 = 'URI:DIR2:qi5mtylrkriv3kdg6afjdfgr54:dnryyavbqfhx6hhk2tdpd4k55zf7kjldusrzwr73j5bewtmzsafq';
    const ro = 'URI:DIR2-RO:ubi5sxepq4fdzcimoave5xozm4:dnryyavbqfhx6hhk2tdpd4k55zf7kjldusrzwr73j5bewtmzsafq';
    expect(() => assertImmutableReadCap(dir2, 'child')).toThrow(/immutable read cap/);
    expect(() => assertImmutableReadCap('URI:CHK-Verifier:umtlp7srt6zpiy3eyeg6m4hvly:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:2:4:1024', 'child')).toThrow();
    expect(() => assertWritableDirCap(ro, 'dest')).toThrow(/not a writable directory/);
    expect(assertWritableDirCap(dir2, 'dest').kind).toBe('DIR2');
    expect(() => assertDirCap('URI:LIT:', 'backup')).toThrow(/not a directory/);
  });

  it('redacts to a short stable tag and scrubs caps out of free text', () => {
    const cap = 'URI:CHK:un76sm4rsegnakzy7m4jeeyova:jhteirnl6zk6j7tmxaoqxum7ba5oya6zeti5eflbt7odsxb7yhoa:2:4:1024';
    expect(redact(cap)).toMatch(/^cap#[0-9a-f]{10}$/);
    expect(redact(cap)).toBe(redact(cap));
    expect(redact(cap)).not.toBe(redact(cap.replace('1024', '1025')));
    const text = `failed: "${cap}", also <URI:DIR2-LIT:>, ${cap}.`;
    const scrubbed = scrubCaps(text);
    expect(scrubbed).not.toContain('URI:');
    expect(scrubbed).toContain(redact(cap));
  });
});
