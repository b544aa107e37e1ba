// Builds the native addon (xattrs and the *at calls; npm runs this on install). Without a compiler the
// install still succeeds: lafs-backup then warns once per run and backs up without ACLs,
// capabilities and xattrs. `npm run setup` insists on it, because the tests need it.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// `--if-stale` (npm run build): only when a source is newer than the built addon. Tests run
// against an addon older than its sources fail in ways that point anywhere but the build.
if (process.argv.includes('--if-stale')) {
  const built = `${here}/build/Release/xattr.node`;
  const sources = ['at.c', 'xattr.c', 'addon.h', 'binding.gyp'].map((f) => `${here}/${f}`).filter(existsSync);
  if (existsSync(built) && sources.every((f) => statSync(f).mtimeMs <= statSync(built).mtimeMs)) process.exit(0);
}
const args = ['rebuild', '--release', '-C', here];
// Use the local Node headers when they are there: nothing to download.
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h')) args.push('--nodedir=/usr');
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' }) : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('lafs-backup: the native addon did not build; backups will not carry ACLs, capabilities or xattrs, and restore will refuse to run (it needs the addon to stay beneath DEST).');
}
process.exit(0);
