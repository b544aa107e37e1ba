/**
 * Losing an object on a grid that has no control surface (a real gateway): the entry cache is
 * made to hold a cap the grid never had, exactly as it holds one whose shares were lost, and
 * the next backup links it into its directories. For the tests of issue 24.5.
 */
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { b32encode } from '../../src/tahoe/base32.js';
import { TahoeClient } from '../../src/tahoe/client.js';

/** A well-formed CHK cap (file or immutable directory) of random keys: no grid has it. */
export function neverStored(kind: 'CHK' | 'DIR2-CHK', size: number): string {
  return `URI:${kind}:${b32encode(randomBytes(16))}:${b32encode(randomBytes(32))}:2:4:${size}`;
}

/**
 * Gives the rows holding `cap` another cap instead; with `remake`, also forgets every
 * directory and listing row, so that the next backup makes each directory again around it.
 * Returns the rows changed.
 */
export function plant(cachePath: string, cap: string, instead: string, remake = false): number {
  const db = new Database(cachePath);
  try {
    const n = db.prepare('UPDATE entries SET cap = ? WHERE cap = ?').run(instead, cap).changes;
    if (remake) db.prepare('DELETE FROM entries WHERE kind >= 2').run();
    return n;
  } finally {
    db.close();
  }
}

/** The cap of the entry at `path` (names) inside the directory `root`. */
export async function capAt(url: string, root: string, path: string[]): Promise<string> {
  const c = new TahoeClient({ url, retry: { attempts: 0, delays: [0] } });
  try {
    const parent = await c.info(root, path.slice(0, -1));
    const child = parent.children?.[path[path.length - 1]!];
    const cap = child?.ro_uri;
    if (!cap) throw new Error(`no ${path.join('/')} in the backup`);
    return cap;
  } finally {
    await c.close();
  }
}
