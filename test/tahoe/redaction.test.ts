/**
 * Redaction by shape: a cap is scrubbed from any text that reaches a log, an error line or a
 * warning, however it is spelled — literal, lower-case, percent-encoded (as a gateway echoes a
 * request path), partly encoded, followed by a `%2F`-separated path — and so is the userinfo of
 * a URL. Property tests put caps in these spellings inside random text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redact, scrubCaps } from '../../src/core/redact.js';

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const b32 = (n: number) => fc.string({ unit: fc.constantFrom(...B32), minLength: n, maxLength: n });

/** A cap of a common kind, with its secret parts. */
const cap = fc.oneof(
  fc.tuple(b32(26), b32(52), fc.integer({ min: 1, max: 2 ** 30 })).map(([k, h, size]) => ({ text: `URI:CHK:${k}:${h}:2:4:${size}`, secret: k })),
  fc.tuple(b32(26), b32(52), fc.integer({ min: 1, max: 2 ** 30 })).map(([k, h, size]) => ({ text: `URI:DIR2-CHK:${k}:${h}:2:4:${size}`, secret: k })),
  fc.tuple(b32(26), b32(52)).map(([k, h]) => ({ text: `URI:DIR2:${k}:${h}`, secret: k })),
  fc.tuple(b32(26), b32(52)).map(([k, h]) => ({ text: `URI:DIR2-RO:${k}:${h}`, secret: k })),
  b32(40).map((d) => ({ text: `URI:LIT:${d}`, secret: d })),
);

type Spelling = (c: string) => string;
const spellings: Record<string, Spelling> = {
  literal: (c) => c,
  lowercase: (c) => c.toLowerCase(),
  'percent-encoded': (c) => encodeURIComponent(c),
  'percent-encoded, lower-case hex': (c) => encodeURIComponent(c).replace(/%3A/g, '%3a'),
  'only the first colon encoded': (c) => c.replace(':', '%3A'),
  'with a %2F path after it': (c) => `${encodeURIComponent(c)}%2Fsub%2Fdir`,
  'with a /path after it': (c) => `${c}/sub/file.txt`,
};

/** Surrounding text that cannot itself spell a cap's secret. */
const noise = fc.string({ maxLength: 40 });

describe('redaction by shape', () => {
  for (const [name, spell] of Object.entries(spellings)) {
    it(`scrubs caps spelled ${name} inside random text`, () => {
      fc.assert(
        fc.property(cap, noise, noise, (c, before, after) => {
          const text = `${before} ${spell(c.text)} ${after}`;
          const out = scrubCaps(text);
          expect(out.toLowerCase()).not.toContain(c.secret.toLowerCase());
          // One cap, one tag, whatever the spelling.
          expect(out).toContain(redact(c.text));
        }),
        { numRuns: 200 },
      );
    });
  }

  it('leaves text without caps alone', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }).filter((s) => !/uri(:|%3a)/i.test(s) && !s.includes('@')), (s) => {
      expect(scrubCaps(s)).toBe(s);
    }));
  });

  it('scrubs the userinfo of URLs (a gateway URL with a password)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{1,12}$/), fc.stringMatching(/^[A-Za-z0-9!$&'()*+,;=.~-]{1,20}$/), (user, pass) => {
        const out = scrubCaps(`cannot reach https://${user}:${pass}@gateway.example:3456/uri now`);
        expect(out).toBe('cannot reach https://***@gateway.example:3456/uri now');
      }),
    );
  });
});
