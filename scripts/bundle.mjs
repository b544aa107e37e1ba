// `npm run build`, second step: dist/cli.js and everything it imports, in one file.
//
// Why: Node 20 loads an ES module graph file by file (resolve, read, compile each; it has no
// compile cache), and a run's ~150 modules cost ~0.1 s of start-up before the first request —
// every run, cron's included (measured: backup of an empty tree 0.43-0.51 s → 0.30-0.43 s).
// The bundle sits two directories below the package root, like every module in dist/*/, so
// the paths modules find beside them (config/default.yaml, native/build) resolve the same.
// Native modules stay outside (loaded from node_modules as before).
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';

// `--version` from anywhere, an installed package included (src/version.ts).
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

await build({
  entryPoints: ['dist/cli.js'],
  outfile: 'dist/bin/lafs-backup.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', 'lzma-native', '*.node'],
  define: { LAFS_BACKUP_VERSION: JSON.stringify(version) },
  // Bundled CommonJS packages call require() for Node's modules: give the ES module one.
  banner: { js: "import { createRequire as lafsCreateRequire } from 'node:module'; const require = lafsCreateRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
