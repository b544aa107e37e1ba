/**
 * `check --verify`: the quick check counts shares; --verify has the gateway read and check
 * every share, so a share damaged in place (same size, other bytes) is found.
 */
import { randomBytes } from 'node:crypto';
import { openSync, readdirSync, readSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrid, type Grid } from '../../src/grid/server.js';
import { backup, configArgs, project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { makeTree, tempDir } from '../support/tree.js';

describe('check --verify', () => {
  let grid: Grid;
  const store = tempDir('lb-verify-grid-');
  beforeAll(async () => {
    grid = await startGrid({ dir: store });
  });
  afterAll(async () => {
    await grid.stop();
  });

  it('finds a share damaged in place that the quick check counts as healthy', async () => {
    const dir = tempDir();
    const payload = randomBytes(200_000);
    makeTree(join(dir, 'src'), { 'photo.jpg': payload });
    const p = project(dir, join(dir, 'src'), grid.url, "destination: {encoding: {xz: {enabled: false}}}\n");
    const made = await backup(p);
    expect(made.code, made.stderr).toBe(0);
    expect((await runCli([...configArgs(p), 'check', '--verify'])).code).toBe(0);
    // Flip one byte of the file's blob (the only one of its size): same size, other bytes.
    const blobs = readdirSync(join(store, 'blobs')).flatMap((d) => readdirSync(join(store, 'blobs', d)).map((f) => join(store, 'blobs', d, f)));
    const blob = blobs.find((b) => statSync(b).size === payload.length)!;
    const fd = openSync(blob, 'r+');
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, 1000);
    one[0] = one[0]! ^ 0xff;
    writeSync(fd, one, 0, 1, 1000);
    closeSync(fd);
    const quick = await runCli([...configArgs(p), 'check']);
    expect(quick.code, quick.stdout).toBe(0);
    const verified = await runCli([...configArgs(p), 'check', '--verify']);
    expect(verified.code).toBe(4);
    expect(verified.stdout).toMatch(/^src: \/photo\.jpg \(file\): Not Healthy: 0 shares \(enc 2-of-4\)$/m);
  });
});
