/**
 * Backups made by hand on the grid (as an attacker, a broken tool or a test of odd shapes
 * would): edge metadata for files and directories, a client, and a project to run the CLI with.
 */
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { project, type Project } from './backup.js';
import { makeTree, tempDir } from './tree.js';

export const META = { uid: '0', gid: '0', mode: '100644', mtime: '1700000000.000000000' };
export const DIRMETA = { uid: '0', gid: '0', mode: '40755', mtime: '1700000000.000000000' };

/** A client for building trees on `env`'s grid and a project pointed at it, for one describe block. */
export function handmade(env: { readonly url: string }): { readonly c: TahoeClient; readonly p: Project } {
  const h: { c?: TahoeClient; p?: Project } = {};
  beforeAll(() => {
    h.c = new TahoeClient({ url: env.url });
    const dir = tempDir();
    makeTree(join(dir, 'src'), { a: 'a' });
    h.p = project(dir, join(dir, 'src'), env.url);
  });
  afterAll(async () => {
    await h.c?.close();
  });
  return {
    get c() {
      return h.c!;
    },
    get p() {
      return h.p!;
    },
  };
}
