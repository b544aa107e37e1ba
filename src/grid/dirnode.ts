/**
 * Immutable dirnode contents, packed the way Tahoe packs them: children sorted by name, each
 * `netstring(netstring(name) netstring(ro_uri) netstring(rw_uri="") netstring(json(metadata)))`
 * with the metadata re-serialised by Python's json.dumps in the order its keys arrived. The
 * packed length is the size inside a DIR2-CHK cap, and ≤ 55 bytes gives a DIR2-LIT cap.
 */
import { pyDumps } from './pyjson.js';

export interface PackedChild {
  name: string;
  ro: string;
  /** Mutable directories only: a write cap linked under this name. */
  rw?: string;
  metadata: Record<string, unknown>;
}

function netstring(b: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

/** Python sorts names by code point; UTF-8 byte order is the same order. */
export function byName(a: { name: string }, b: { name: string }): number {
  return Buffer.compare(Buffer.from(a.name, 'utf8'), Buffer.from(b.name, 'utf8'));
}

export function packChildren(children: PackedChild[]): Buffer {
  const parts = [...children].sort(byName).map((c) =>
    netstring(
      Buffer.concat([
        netstring(Buffer.from(c.name, 'utf8')),
        netstring(Buffer.from(c.ro, 'utf8')),
        netstring(Buffer.alloc(0)),
        netstring(Buffer.from(pyDumps(c.metadata), 'utf8')),
      ]),
    ),
  );
  return Buffer.concat(parts);
}

function readNetstring(buf: Buffer, pos: number): [Buffer, number] {
  const colon = buf.indexOf(0x3a, pos);
  if (colon < 0) throw new Error('bad netstring');
  const len = Number(buf.subarray(pos, colon).toString('ascii'));
  if (!Number.isInteger(len) || len < 0) throw new Error('bad netstring length');
  const end = colon + 1 + len;
  if (buf[end] !== 0x2c) throw new Error('bad netstring terminator');
  return [buf.subarray(colon + 1, end), end + 1];
}

export function unpackChildren(buf: Buffer): PackedChild[] {
  const out: PackedChild[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [entry, next] = readNetstring(buf, pos);
    pos = next;
    const [name, p1] = readNetstring(entry, 0);
    const [ro, p2] = readNetstring(entry, p1);
    const [, p3] = readNetstring(entry, p2);
    const [meta] = readNetstring(entry, p3);
    out.push({
      name: name.toString('utf8'),
      ro: ro.toString('utf8'),
      metadata: JSON.parse(meta.toString('utf8')) as Record<string, unknown>,
    });
  }
  return out;
}
