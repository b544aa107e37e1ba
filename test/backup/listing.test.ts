/**
 * Unchanged directories answered whole by their listing rows (cache/keys.ts ListingKey): the
 * root cap is always the one a backup without any cache gives, whatever changed; a reused
 * listing touches none of its files' rows; cleanup still keeps exactly what a kept backup used.
 */
import { chmodSync, linkSync, mkdirSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { describe, expect } from 'vitest';
import { backup, cacheRows, configArgs, project, readBack, type Project } from '../support/backup.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, uploadsDuring, useGrid } from '../support/grid.js';
import { tempDir } from '../support/tree.js';

const env = useGrid();
const old = new Date(Date.now() - 3600_000);

function write(path: string, data: string): void {
  writeFileSync(path, data);
  utimesSync(path, old, old);
}

/** A listing is used only once its children's ctimes are older than the 2 s trust window. */
const settle = () => sleep(2100);

/** a/ (3 files), a/deep/ (2 files, a symlink), b/ (2 files), top.txt */
function tree(src: string): void {
  mkdirSync(join(src, 'a', 'deep'), { recursive: true });
  mkdirSync(join(src, 'b'));
  for (const n of ['1', '2', '3']) write(join(src, 'a', `f${n}.txt`), `a file ${n}\n`.repeat(40));
  for (const n of ['1', '2']) write(join(src, 'a', 'deep', `g${n}.txt`), `deep file ${n}\n`.repeat(30));
  symlinkSync('g1.txt', join(src, 'a', 'deep', 'link'));
  for (const n of ['1', '2']) write(join(src, 'b', `h${n}.txt`), `b file ${n}\n`.repeat(20));
  write(join(src, 'top.txt'), 'top\n');
}

function json(r: { stdout: string }): { cap: string; files: { uploaded: number; reused: number }; directories: { created: number; reused: number } } {
  return JSON.parse(r.stdout);
}

/** The root cap of the same source backed up with a cache of its own, new each time. */
async function fromScratch(dir: string, src: string, n: number): Promise<string> {
  const d = join(dir, `scratch-${n}`);
  mkdirSync(d);
  const r = await backup(project(d, src, env.url));
  expect(r.code, r.stderr).toBe(0);
  return r.cap;
}

/** The tree, old enough to be listed, backed up once. */
async function backedUp(): Promise<{ dir: string; src: string; p: Project }> {
  const dir = tempDir();
  const src = join(dir, 'src');
  tree(src);
  await settle();
  const p = project(dir, src, env.url);
  expect((await backup(p)).code).toBe(0);
  return { dir, src, p };
}

const listingRows = (p: Project) => cacheRows(p.cache, 'SELECT generation FROM entries WHERE kind = 3').map((r) => r.generation as number);

describe('an unchanged directory is one row', () => {
  itEmbedded('the second run answers every directory by its listing, bumps no file row, and gives the same root cap', async () => {
    const dir = tempDir();
    const src = join(dir, 'src');
    tree(src);
    await settle();
    const p = project(dir, src, env.url);
    const first = await backup(p, ['--json']);
    expect(first.code, first.stderr).toBe(0);
    // One listing per directory: the root, a, a/deep, b.
    expect(listingRows(p)).toEqual([1, 1, 1, 1]);
    const second = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(second.result.code, second.result.stderr).toBe(0);
    expect(second.uploaded).toEqual([]);
    const j = json(second.result);
    expect(j.cap).toBe(json(first).cap);
    expect(j.files.reused).toBe(8);
    expect(j.directories.reused).toBe(4);
    expect(listingRows(p)).toEqual([2, 2, 2, 2]);
    // The files' and symlink's rows were not touched: the listings stand for them.
    expect(cacheRows(p.cache, 'SELECT DISTINCT generation AS g FROM entries WHERE kind IN (0, 1)')).toEqual([{ g: 1 }]);
    // The backup reads back whole.
    const back = await readBack(env.url, j.cap);
    expect(back.get('a/deep/g2.txt')!.content!.toString()).toBe('deep file 2\n'.repeat(30));
    expect(back.get('a/deep/link')!.metadata.mode).toBeUndefined();
  });

  itEmbedded('a directory with a hard-linked file, or a child changed in the last two seconds, is not listed, nor the directories above it', async () => {
    const listed = (p: Project) => cacheRows(p.cache, 'SELECT key FROM entries WHERE kind = 3 ORDER BY key').map((r) => (r.key as Buffer).subarray(0, (r.key as Buffer).indexOf(0)).toString());
    const dir = tempDir();
    const linked = join(dir, 'linked');
    const fresh = join(dir, 'fresh');
    tree(linked);
    tree(fresh);
    linkSync(join(linked, 'b', 'h1.txt'), join(linked, 'b', 'h1-again.txt'));
    await settle();
    for (const src of [linked, fresh]) {
      const d = join(dir, `${src === linked ? 'l' : 'f'}-project`);
      mkdirSync(d);
      const p = project(d, src, env.url);
      // Made just before the backup that must not list its directory.
      if (src === fresh) write(join(fresh, 'b', 'new.txt'), 'just now\n');
      expect((await backup(p)).code).toBe(0);
      expect(listed(p)).toEqual(['a', 'a/deep']);
      const again = await backup(p, ['--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(json(again).cap).toBe(await fromScratch(d, src, 0));
      if (src === linked) {
        // The link group is still one, named by its first member in the queue.
        const back = await readBack(env.url, json(again).cap);
        expect(back.get('b/h1.txt')!.metadata.hardlink).toBe('b/h1-again.txt');
        expect(back.get('b/h1-again.txt')!.metadata.hardlink).toBe('b/h1-again.txt');
      }
    }
  }, 60_000);
});

type Change = { what: string; apply: (src: string) => void };

/** Changes a listing must see, each somewhere in the tree. */
const CHANGES: Change[] = [
  { what: 'contents rewritten, same size and mtime', apply: (s) => write(join(s, 'a', 'f1.txt'), 'A FILE 1\n'.repeat(40)) },
  { what: 'chmod of a deep file', apply: (s) => chmodSync(join(s, 'a', 'deep', 'g2.txt'), 0o600) },
  { what: 'chmod of a directory', apply: (s) => chmodSync(join(s, 'b'), 0o700) },
  { what: 'a file renamed', apply: (s) => renameSync(join(s, 'b', 'h2.txt'), join(s, 'b', 'h3.txt')) },
  { what: 'a file added deep down', apply: (s) => write(join(s, 'a', 'deep', 'g9.txt'), 'nine\n') },
  { what: 'a file removed', apply: (s) => rmSync(join(s, 'a', 'f3.txt')) },
  {
    what: 'a symlink pointed elsewhere (same length)',
    apply: (s) => {
      rmSync(join(s, 'a', 'deep', 'link'));
      symlinkSync('g2.txt', join(s, 'a', 'deep', 'link'));
    },
  },
  { what: 'an empty directory made', apply: (s) => mkdirSync(join(s, 'b', 'empty')) },
  { what: 'mtime of a file put back an hour more', apply: (s) => utimesSync(join(s, 'top.txt'), new Date(old.getTime() - 3600_000), new Date(old.getTime() - 3600_000)) },
];

describe('whatever changes, the root cap is the one a backup without a cache gives', () => {
  itEmbedded('each kind of change, one after another', async () => {
    const { dir, src, p } = await backedUp();
    let n = 0;
    for (const c of CHANGES) {
      c.apply(src);
      await settle();
      const r = await backup(p, ['--json']);
      expect(r.code, `${c.what}: ${r.stderr}`).toBe(0);
      expect(json(r).cap, c.what).toBe(await fromScratch(dir, src, n++));
    }
  }, 120_000);

  itEmbedded('random sequences of changes (fast-check), several before each backup', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.integer({ min: 0, max: CHANGES.length - 1 }), { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 2 }), async (batches) => {
        const { dir, src, p } = await backedUp();
        for (const batch of batches) {
          // A change may not apply twice (the renamed file is gone): those are skipped.
          for (const i of batch) {
            try {
              CHANGES[i]!.apply(src);
            } catch {
              /* already applied */
            }
          }
          await settle();
          const r = await backup(p, ['--json']);
          expect(r.code, r.stderr).toBe(0);
          expect(json(r).cap).toBe(await fromScratch(dir, src, run++));
        }
      }),
      { numRuns: 2 },
    );
  }, 180_000);
});

describe('cleanup with listings', () => {
  itEmbedded('forgetting the first generation keeps the rows the second used through listings; the dry run counts exactly', async () => {
    const { src, p } = await backedUp();
    expect((await backup(p)).code).toBe(0);
    const rows = cacheRows(p.cache, 'SELECT count(*) AS n FROM entries')[0]!.n as number;
    const dry = await runCli([...configArgs(p), 'cleanup', '-g', '1', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout + dry.stderr).toMatch(/\b0 cache entries/);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries')[0]!.n).toBe(rows);
    const forgot = await runCli([...configArgs(p), 'cleanup', '-g', '1']);
    expect(forgot.code, forgot.stderr).toBe(0);
    expect(cacheRows(p.cache, 'SELECT count(*) AS n FROM entries')[0]!.n).toBe(rows);
    expect(cacheRows(p.cache, 'SELECT DISTINCT generation AS g FROM entries')).toEqual([{ g: 2 }]);
    // One file changed: its directory is looked at file by file again, and only it goes up.
    write(join(src, 'a', 'deep', 'g1.txt'), 'DEEP FILE 1\n'.repeat(30));
    await settle();
    const third = await uploadsDuring(env.grid, () => backup(p, ['--json']));
    expect(third.result.code, third.result.stderr).toBe(0);
    expect(json(third.result).files.uploaded).toBe(1);
    expect(json(third.result).files.reused).toBe(7);
  }, 60_000);
});
