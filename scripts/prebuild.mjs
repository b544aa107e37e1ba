// `npm run build`, last step: the addon built here, copied where node-gyp-build looks for a
// prebuilt one (native/prebuilds/PLATFORM-ARCH/node.napi.LIBC.node, prebuildify's layout), so a
// packed package carries a build for the packer's platform. It uses N-API only (node_api.h), so
// one build serves every Node.js from 20 on; another platform or libc compiles from the
// sources on install, as before.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const native = new URL('../native/', import.meta.url).pathname;
const built = join(native, 'build', 'Release', 'lafs.node');
if (!existsSync(built)) {
  console.warn('lafs-backup: no addon built (native/build/Release/lafs.node): the package will carry no prebuilt addon');
  process.exit(0);
}
// glibc or musl, as node-gyp-build tells them apart (the report names glibc when linked with it).
const libc = process.platform !== 'linux' ? '' : process.report.getReport().header.glibcVersionRuntime ? '.glibc' : '.musl';
const dir = join(native, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
const target = join(dir, `node.napi${libc}.node`);
if (!existsSync(target) || !readFileSync(target).equals(readFileSync(built))) copyFileSync(built, target);
