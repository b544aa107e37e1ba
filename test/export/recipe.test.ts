/**
 * The README's recipe for getting files back without lafs-backup (issue 26, item 9), run as
 * written: with the stock `tahoe` CLI when one can be run (LAFS_TEST_TAHOE=/path/to/tahoe,
 * with LAFS_TEST_GATEWAY naming its gateway), else against the embedded grid with its `tahoe
 * cp -r` step done by curl, one GET per file (what `tahoe cp` asks the gateway for).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { walkBackup } from '../../src/browse/tree.js';
import { TahoeClient } from '../../src/tahoe/client.js';
import { backup, project } from '../support/backup.js';
import { EXTERNAL, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';

const env = useGrid();
const TAHOE = process.env.LAFS_TEST_TAHOE && EXTERNAL ? process.env.LAFS_TEST_TAHOE : undefined;

/** The recipe's shell block, as the README has it. */
function recipe(): string {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Getting files back without lafs-backup'));
  const block = /```sh\n([\s\S]*?)\n```/.exec(section);
  if (!block) throw new Error('the README has no recipe block');
  return block[1]!;
}

function bash(script: string, cwd: string, vars: Record<string, string>): Promise<string> {
  return new Promise((ok, fail) =>
    execFile('bash', ['-euo', 'pipefail', '-c', script], { cwd, env: { ...process.env, ...vars }, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : ok(stdout))),
  );
}

it(`${TAHOE ? 'with the stock tahoe CLI' : 'its tahoe cp step done by curl (no tahoe CLI given)'}: tahoe cp -r and xz -d as the listing says give the contents back`, async () => {
  const dir = tempDir();
  const src = join(dir, 'src');
  const tarXz = await new Promise<Buffer>((ok, fail) => execFile('sh', ['-c', 'printf "already compressed, stored as it is\\n%.0s" $(seq 500) | xz -c'], { encoding: 'buffer' }, (e, out) => (e ? fail(e) : ok(out))));
  makeTree(src, { 'notes.txt': 'a note worth compressing\n'.repeat(2000), 'data.tar.xz': tarXz, sub: { deep: { 'log.txt': 'log line\n'.repeat(3000) } }, 'raw.bin': Buffer.alloc(9000, 7) });
  const results = join(dir, 'results.txt');
  const p = project(dir, src, env.url, `destination: {result: {append_to_file: '${results}'}}\n`);
  const b = await backup(p);
  expect(b.code, b.stderr).toBe(0);
  const work = tempDir();
  const gateway = `${env.url.replace(/\/uri$/, '')}/`;
  const vars = { NODE: join(work, 'node'), GATEWAY: gateway, RESULTS: results, PATH: `${TAHOE ? `${dirname(TAHOE)}:` : ''}${process.env.PATH}` };
  const script = recipe().split('\n').filter((l) => !/^(NODE|GATEWAY|RESULTS)=/.test(l)).join('\n');
  if (TAHOE) await bash(script, work, vars);
  else {
    const [before, after] = script.split(/^tahoe -d "\$NODE" cp -r backup: \.\/restored$/m);
    expect(after, 'the recipe copies with tahoe cp -r').toBeDefined();
    await bash(before!, work, vars);
    // tahoe cp -r, by curl: every directory made, every file fetched as stored.
    const client = new TahoeClient({ url: env.url });
    try {
      mkdirSync(join(work, 'restored'));
      for await (const n of walkBackup(client, b.cap)) {
        const path = join(work, 'restored', ...n.path);
        if (n.type === 'dirnode') mkdirSync(path);
        else await bash('curl -sSf -o "$OUT" "$URL"', work, { OUT: path, URL: `${env.url}/${n.cap}` });
      }
    } finally {
      await client.close();
    }
    await bash(after!, work, vars);
  }
  for (const rel of ['notes.txt', 'data.tar.xz', 'sub/deep/log.txt', 'raw.bin']) expect(readFileSync(join(work, 'restored', rel)).equals(readFileSync(join(src, rel))), rel).toBe(true);
});
