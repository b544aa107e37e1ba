/** The queue line codec round-trips every possible name (property test) and stays readable. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePath, encodePath, formatLine, parseLine, type QueueEntry } from '../../src/scan/queue-codec.js';

/** Names as a filesystem allows them: any bytes but NUL and '/', with the troublemakers favoured. */
const nameByte = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 255 }).filter((b) => b !== 0x2f) },
  { weight: 1, arbitrary: fc.constantFrom(0x0a, 0x0d, 0x5c, 0x20, 0x23, 0x78, 0x09, 0x7f, 0xff, 0xc3, 0xa9, 0xe2, 0x80) },
);
// '.' and '..' are not names a directory can hold (and queue lines refuse them).
const name = fc.array(nameByte, { minLength: 1, maxLength: 24 }).map((a) => Buffer.from(a)).filter((b) => b.toString('latin1') !== '.' && b.toString('latin1') !== '..');
const relPath = fc.array(name, { minLength: 0, maxLength: 4 }).map((parts) => Buffer.from(parts.map((p) => p.toString('latin1')).join('/'), 'latin1'));

describe('queue codec', () => {
  it('decode(encode(path)) gives back the exact bytes, and the text never contains a line break', () => {
    fc.assert(
      fc.property(relPath, (p) => {
        const text = encodePath(p);
        expect(text).not.toMatch(/[\n\r]/);
        expect(decodePath(text).equals(p)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('parseLine(formatLine(entry)) gives back the entry, names with trailing spaces included', () => {
    const entry = fc.record({
      path: relPath,
      uid: fc.nat({ max: 2 ** 32 - 1 }),
      gid: fc.nat({ max: 2 ** 32 - 1 }),
      mode: fc.oneof(fc.constant(null), fc.constantFrom(0o100644, 0o40755, 0o100600, 0o102750, 0o41777)),
      caps: fc.option(fc.constantFrom('=;cap_net_raw+ep', 'cap_dac_read_search+i', '=ep'), { nil: undefined }),
      acls: fc.option(fc.constantFrom('u::rwx,u:1000:rwx,g::r-x,m::rwx,o::r-x', 'u::rwx,g::r-x,o::r-x,d:u::rwx,d:g::r-x,d:o::---'), { nil: undefined }),
    });
    fc.assert(
      fc.property(entry, fc.constantFrom(' ', '  ', 'a '), (e, suffix) => {
        const withSpace: QueueEntry = { ...e, path: Buffer.concat([e.path, Buffer.from(suffix)]) } as QueueEntry;
        for (const x of [e as QueueEntry, withSpace]) {
          const line = formatLine(x);
          const back = parseLine(line)!;
          expect(back.path.equals(x.path)).toBe(true);
          expect({ ...back, path: null }).toEqual({ ...x, path: null, ...(x.caps ? {} : { caps: undefined }), ...(x.acls ? {} : { acls: undefined }) });
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('writes readable lines: plain UTF-8 as is, escapes only what would break the format', () => {
    expect(formatLine({ path: Buffer.from('tmp/session debug.log'), uid: 1000, gid: 1000, mode: 0o100644 })).toBe('tmp/session debug.log 1000:1000:100644');
    expect(formatLine({ path: Buffer.alloc(0), uid: 1000, gid: 1000, mode: 0o40755 })).toBe(' 1000:1000:40755');
    expect(formatLine({ path: Buffer.from('tmp/root.log'), uid: 0, gid: 0, mode: 0o100600, acls: 'u::rwx,u:1000:rwx,g::r-x,m::rwx,o::r-x' })).toBe('tmp/root.log 0:0:100600//u::rwx,u:1000:rwx,g::r-x,m::rwx,o::r-x');
    expect(formatLine({ path: Buffer.from('bin/fs_backup'), uid: 1000, gid: 1000, mode: 0o102750, caps: '=;cap_dac_read_search+i' })).toBe('bin/fs_backup 1000:1000:102750/=;cap_dac_read_search+i');
    expect(formatLine({ path: Buffer.from('link'), uid: 1, gid: 2, mode: null })).toBe('link 1:2:');
    expect(encodePath(Buffer.from('ünïcödé/日本'))).toBe('ünïcödé/日本');
    expect(encodePath(Buffer.from([0x61, 0x0a, 0x5c, 0xff, 0x09]))).toBe('a\\n\\\\\\xff\\x09');
    expect(encodePath(Buffer.from('#x/#y'))).toBe('\\x23x/#y');
  });

  it('rejects malformed lines with a reason', () => {
    expect(() => parseLine('nospace')).toThrow(/no space/);
    expect(() => parseLine('a 1:2')).toThrow(/bad metadata/);
    expect(() => parseLine('a\\q 1:2:100644')).toThrow(/bad escape/);
    expect(() => parseLine('a 1:2:20644')).toThrow(/neither a directory nor a regular file/);
    expect(parseLine('# a comment')).toBeUndefined();
  });
});
