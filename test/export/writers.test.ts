/**
 * The archive writers on their own, read by independent readers (GNU tar, Python's tarfile and
 * zipfile): what the end-to-end tests cannot reach cheaply — zip64 entries, owners past
 * ustar's octal fields, times before 1970, a member whose body is not its size.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArchive, GatheringSink } from '../../src/export/archive.js';
import { MemberSizeError } from '../../src/export/zip.js';
import { tempDir } from '../support/tree.js';

const py = (script: string, ...args: string[]) =>
  new Promise<string>((ok, fail) => execFile('python3', ['-c', script, ...args], { encoding: 'utf8' }, (e, out, err) => (e ? fail(new Error(err)) : ok(out))));

async function* chunks(data: Buffer, size = 65536): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const meta = (path: string, extra: Record<string, unknown> = {}) => ({ path: Buffer.from(path), mode: 0o644, uid: 1000, gid: 1000, mtimeNs: 1_700_000_000_123_456_789n, ...extra });

async function archive(format: 'tar' | 'zip', write: (a: ReturnType<typeof createArchive>) => Promise<void>, opts = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  const a = createArchive(format, new GatheringSink(async (b) => void parts.push(Buffer.from(b))), opts);
  try {
    await write(a);
    await a.end();
  } finally {
    a.dispose();
  }
  return Buffer.concat(parts);
}

describe('archive writers', () => {
  it('tar: owners past the octal fields, times before 1970 and to the ns, long names, as tarfile reads them', async () => {
    const body = Buffer.alloc(70_000, 'z');
    const long = `${'d'.repeat(150)}/${'n'.repeat(150)}`;
    const tar = await archive('tar', async (a) => {
      await a.dir(meta('dir', { mode: 0o750 }));
      await a.file(meta('dir/big-ids', { uid: 4_000_000, gid: 3_000_000 }), Buffer.from('ids'));
      await a.stream(meta(long, { mtimeNs: -1_500_000_000n }), body.length, chunks(body));
      await a.symlink(meta('link'), Buffer.from('dir/big-ids'));
    });
    expect(tar.length % 10240).toBe(0);
    const file = join(tempDir(), 'a.tar');
    writeFileSync(file, tar);
    const got = JSON.parse(
      await py(
        `import tarfile, json, sys
t = tarfile.open(sys.argv[1])
print(json.dumps([[m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, m.pax_headers.get('mtime'), m.linkname, m.size] for m in t]))`,
        file,
      ),
    );
    expect(got).toEqual([
      ['dir', '5', '0o750', 1000, 1000, '1700000000.123456789', '', 0],
      ['dir/big-ids', '0', '0o644', 4_000_000, 3_000_000, '1700000000.123456789', '', 3],
      [long, '0', '0o644', 1000, 1000, '-1.500000000', '', 70_000],
      ['link', '2', '0o777', 1000, 1000, '1700000000.123456789', 'dir/big-ids', 0],
    ]);
  });

  it('zip: zip64 entries, streamed and whole, as zipfile reads and checks them', async () => {
    const body = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `line ${i}\n`).join(''));
    const zip = await archive(
      'zip',
      async (a) => {
        await a.dir(meta('d'));
        await a.stream(meta('d/streamed.txt'), body.length, chunks(body, 10_000));
        await a.file(meta('whole.txt'), Buffer.from('whole '.repeat(100)));
        await a.symlink(meta('l'), Buffer.from('whole.txt'));
      },
      { zip64From: 0 },
    );
    const file = join(tempDir(), 'a.zip');
    writeFileSync(file, zip);
    const got = JSON.parse(
      await py(
        `import zipfile, json, sys, hashlib
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps([[i.filename, oct(i.external_attr >> 16), i.file_size, hashlib.sha256(z.read(i)).hexdigest(), (i.extra.find(b'\\x01\\x00') >= 0)] for i in z.infolist()]))`,
        file,
      ),
    );
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    expect(got).toEqual([
      ['d/', '0o40644', 0, sha(''), true],
      ['d/streamed.txt', '0o100644', body.length, sha(body), true],
      ['whole.txt', '0o100644', 600, sha('whole '.repeat(100)), true],
      ['l', '0o120777', 9, sha('whole.txt'), true],
    ]);
  });

  it('a body that is not its size fails the member (tar and zip): never a short member written as whole', async () => {
    for (const format of ['tar', 'zip'] as const) {
      await expect(archive(format, (a) => a.stream(meta('f'), 10, chunks(Buffer.alloc(4))))).rejects.toThrow(MemberSizeError);
      await expect(archive(format, (a) => a.stream(meta('f'), 10, chunks(Buffer.alloc(11))))).rejects.toThrow(MemberSizeError);
    }
  });
});
