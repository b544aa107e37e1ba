/**
 * The small real tree the reader's and the plan's tests back up: a/ (2 files), b/ (1 file),
 * b/c/ (2 files), top. Files carry an mtime an hour old; their ctimes are now, so the tests
 * trust them with FUTURE (everything changed before it).
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../support/tree.js';

export const HOUR_AGO = new Date(Date.now() - 3600_000);
/** Trusted: everything in these trees changed before it. */
export const FUTURE = (BigInt(Date.now()) + 3_600_000n) * 1_000_000n;

export function smallTree(prefix: string): string {
  const root = tempDir(prefix);
  for (const d of ['a', 'b', 'b/c']) mkdirSync(join(root, d), { recursive: true });
  for (const f of ['a/1', 'a/2', 'b/3', 'b/c/4', 'b/c/5', 'top']) {
    writeFileSync(join(root, f), `contents of ${f}\n`);
    utimesSync(join(root, f), HOUR_AGO, HOUR_AGO);
  }
  return root;
}
