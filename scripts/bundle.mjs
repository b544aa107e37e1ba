// `npm run build`, third step: dist/cli.js and everything it imports, in one file — the only
// JavaScript the package ships — and the licence notices of the third-party code inside it.
//
// Why one file: Node 20 loads an ES module graph file by file (resolve, read, compile each; it
// has no compile cache), and a run's ~150 modules cost ~0.1 s of start-up before the first
// request — every run, cron's included (measured: backup of an empty tree 0.43-0.51 s →
// 0.30-0.43 s). The bundle sits two directories below the package root, like every module in
// dist/*/, so the paths modules find beside them (config/, native/) resolve the same. Native
// modules stay outside (better-sqlite3 and lzma-native are the package's dependencies).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('../', import.meta.url).pathname;
// `--version` from anywhere, an installed package included (src/version.ts).
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const result = await build({
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
  // Licence comments the sources carry (/*! … */, @license) stay, at the end of the file.
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

/** The packages whose code is in the bundle (from esbuild's list of inputs), by their directory. */
function bundledPackages(metafile) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

const LICENSE_FILE = /^(licen[cs]e|copying|notice)(\..*)?$/i;

// THIRD-PARTY-NOTICES.txt: for each bundled package, its name, version, declared licence and
// the text of its licence file(s), as their licences (MIT, ISC, BSD, Apache-2.0) ask.
const parts = [
  `Third-party software in dist/bin/lafs-backup.js (lafs-backup ${version})`,
  '',
  'lafs-backup is distributed under the GNU General Public License, version 3 or later (LICENSE).',
  'Its one-file command contains the code of the packages below, each under its own licence,',
  'whose text follows. (better-sqlite3 and lzma-native are not in it: they are installed as',
  'dependencies, with their own licence files.)',
];
for (const dir of bundledPackages(result.metafile)) {
  const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'));
  const files = readdirSync(join(root, dir)).filter((f) => LICENSE_FILE.test(f)).sort();
  parts.push('', '='.repeat(78), `${pkg.name} ${pkg.version} — ${typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? pkg.licenses ?? 'see its package')}`, '='.repeat(78), '');
  if (!files.length) {
    const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
    parts.push(`(The package ships no licence file; it declares the licence above${author ? `, by ${author}` : ''}.)`);
  }
  for (const f of files) parts.push(readFileSync(join(root, dir, f), 'utf8').trimEnd(), '');
}
const notices = `${parts.join('\n')}\n`;
const out = join(root, 'THIRD-PARTY-NOTICES.txt');
if (!existsSync(out) || readFileSync(out, 'utf8') !== notices) writeFileSync(out, notices);
