// Builds the native addon (xattrs and the *at calls; npm runs this on install). An installed
// package that carries a prebuilt addon for this platform (native/prebuilds/, node-gyp-build's
// layout, made by scripts/prebuild.mjs when it was packed) uses that and compiles nothing: it
// installs without a compiler. Otherwise, without a compiler the install still succeeds:
// lafs-backup then refuses to back up extended metadata (naming the fix) and to restore.
// `npm run setup` insists on a build, because the tests need it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** A prebuilt addon for this platform that loads here, if the package carries one. */
function prebuilt() {
  const dir = join(here, 'prebuilds', `${process.platform}-${process.arch}`);
  let names = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.node'));
  } catch {
    return undefined;
  }
  for (const n of names) {
    try {
      require(join(dir, n));
      return join(dir, n);
    } catch {
      /* another libc, or broken: try the next, then compile */
    }
  }
  return undefined;
}
// `--if-stale` (npm run build): only when a source is newer than the built addon. Tests run
// against an addon older than its sources fail in ways that point anywhere but the build.
if (process.argv.includes('--if-stale')) {
  const built = `${here}/build/Release/lafs.node`;
  const sources = ['addon.c', 'util.c', 'xattr.c', 'at.c', 'scan.c', 'addon.h', 'binding.gyp'].map((f) => `${here}/${f}`).filter(existsSync);
  if (existsSync(built) && sources.every((f) => statSync(f).mtimeMs <= statSync(built).mtimeMs)) process.exit(0);
}
// On install (no flag): a prebuilt addon that loads is all it takes.
if (!process.argv.includes('--if-stale') && !process.argv.includes('--compile') && !existsSync(join(here, 'build')) && prebuilt()) process.exit(0);
const args = ['rebuild', '--release', '-C', here];
// Use the local Node headers when they are there: nothing to download.
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('lafs-backup: the native addon did not build; backups will not carry ACLs, capabilities or xattrs, and restore will refuse to run (it needs the addon to stay beneath DEST).');
}
process.exit(0);
