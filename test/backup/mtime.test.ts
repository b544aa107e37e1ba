/**
 * mtimes are stored and read back exactly for any value a filesystem can hold: before 1970,
 * fractions of negative seconds, and far in the future. A round trip over random bigint
 * nanoseconds, and files on disk with such mtimes backed up and read back.
 */
import { execFileSync } from 'node:child_process';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mtimeText, parseMtime } from '../../src/core/mtime.js';
import { backup, project, readBack } from '../support/backup.js';
import { useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();

describe('mtimes', () => {
  it('round-trip exactly for any 64-bit nanosecond value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (ns) => {
        const text = mtimeText(ns);
        expect(text).toMatch(/^-?\d+\.\d{9}$/);
        expect(parseMtime(text)).toBe(ns);
      }),
      { numRuns: 2000 },
    );
    expect(mtimeText(-500_000_000n)).toBe('-1.500000000');
    expect(mtimeText(-1_000_000_000n)).toBe('-1.000000000');
    expect(parseMtime('-1.000000000')).toBe(-1_000_000_000n);
  });

  it('a file from before 1970 and one from the far future are backed up with their mtimes; the future one is cached, with one warning', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'src'), { old: 'o'.repeat(100), future: 'f'.repeat(100), future2: 'g'.repeat(100) });
    // Node's utimes takes a negative time for "now": touch sets it.
    execFileSync('touch', ['-d', '@-86400.25', join(dir, 'src', 'old')]);
    const far = 4_102_444_800; // 2100-01-01
    utimesSync(join(dir, 'src', 'future'), far, far);
    // Past 2262: more nanoseconds than 64 bits hold (phase 2's fast stat hands it back).
    execFileSync('touch', ['-d', '@13569465600.5', join(dir, 'src', 'future2')]);
    const p = project(dir, join(dir, 'src'), env.url);
    const r = await backup(p);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => / WARN /.test(l));
    expect(warnings, r.stderr).toHaveLength(1);
    expect(warnings[0]).toMatch(/2 files have modification times in the future/);
    const back = await readBack(env.url, r.cap);
    expect(parseMtime(back.get('old')!.metadata.mtime)).toBe(-86_400_250_000_000n);
    expect(parseMtime(back.get('future')!.metadata.mtime)).toBe(BigInt(far) * 1_000_000_000n);
    expect(parseMtime(back.get('future2')!.metadata.mtime)).toBe(13_569_465_600_500_000_000n);
    // Cached: the next run reuses every file.
    const again = await backup(p, ['--json']);
    const summary = JSON.parse(again.stdout) as { files: { uploaded: number; reused: number } };
    expect(summary.files).toMatchObject({ uploaded: 0, reused: 3 });
  });
});
