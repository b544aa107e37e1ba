/**
 * `npm run demo`: the whole tool at work in one command. Starts the embedded grid in this
 * process, makes a small sample tree, backs it up with `lafs-backup backup`, prints the root
 * cap and the backup's listing, backs it up again (nothing is uploaded twice), and exits.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { walkBackup } from './browse/tree.js';
import { startGrid } from './grid/server.js';
import { main } from './main.js';
import { TahoeClient } from './tahoe/client.js';

function sampleTree(root: string): void {
  const old = new Date(Date.now() - 3600_000);
  const files: [string, string | Buffer][] = [
    ['README.txt', 'lafs-backup demo tree.\n'.repeat(800)],
    ['notes/hello.txt', 'hello world\n'],
    ['notes/empty', ''],
    ['notes/ünïcode name.txt', 'names are kept as bytes\n'],
    ['data/random.bin', randomBytes(200_000)],
    ['data/deep/er/leaf.txt', 'a leaf in a deep directory\n'],
  ];
  for (const [rel, content] of files) {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, content);
    utimesSync(p, old, old);
  }
  mkdirSync(join(root, 'empty-dir'));
  symlinkSync('notes/hello.txt', join(root, 'hello-link'));
}

function mode(m: unknown, type: string): string {
  if (typeof m !== 'string') return type === 'dirnode' ? 'd?????????' : 'l?????????';
  const n = parseInt(m, 8);
  const bits = ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'].map((c, i) => (n & (1 << (8 - i)) ? c : '-')).join('');
  return (type === 'dirnode' ? 'd' : '-') + bits;
}

async function demo(): Promise<number> {
  const work = mkdtempSync(join(tmpdir(), 'lafs-backup-demo-'));
  const grid = await startGrid();
  try {
    const source = join(work, 'sample');
    sampleTree(source);
    const config = join(work, 'demo.yaml');
    writeFileSync(
      config,
      [
        `source: {path: ${source}, queue: {path: ${join(work, 'queue.txt')}}, entry_cache: {path: ${join(work, 'cache.db')}}}`,
        `destination: {url: '${grid.url}', result: {append_to_file: ${join(work, 'results.txt')}}}`,
        'logging: {level: info}',
        '',
      ].join('\n'),
    );
    console.log(`Embedded grid (a stand-in; it encrypts nothing) at ${grid.url}`);
    console.log(`Sample tree: ${source}\n\n$ lafs-backup -c demo.yaml backup`);
    const first = await main(['-c', config, 'backup']);
    if (first !== 0) return first;
    // The result file holds "TIMESTAMP SOURCE ROOTCAP" lines; the last one is this backup's.
    const rootCap = readFileSync(join(work, 'results.txt'), 'utf8').trim().split('\n').pop()!.split(' ').pop()!;
    console.log('\nThe backup, as stored on the grid (mode, owner, size, encoding, path):');
    const client = new TahoeClient({ url: grid.url });
    for await (const node of walkBackup(client, rootCap)) {
      const m = node.metadata;
      const kind = m.mode === undefined && node.type === 'filenode' ? 'l' : '';
      const size = node.type === 'dirnode' ? '-' : String(node.size ?? 0);
      console.log(`  ${kind ? 'l---------' : mode(m.mode, node.type)} ${m.uid}:${m.gid} ${size.padStart(8)} ${String(m.enc ?? '').padEnd(2)} ${node.path.join('/')}${node.type === 'dirnode' ? '/' : ''}`);
    }
    await client.close();
    console.log('\n$ lafs-backup -c demo.yaml backup   # again: nothing changed, nothing is uploaded');
    grid.resetStats();
    const second = await main(['-c', config, 'backup']);
    console.log(`\nThe grid saw ${grid.stats.put_uri} uploads and ${grid.stats.mkdir_immutable} directory creations on the second run.`);
    return second;
  } finally {
    await grid.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

demo().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exitCode = 1;
  },
);
