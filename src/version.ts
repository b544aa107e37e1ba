/**
 * The package's version, for `--version`. `npm run build` writes it into the one-file command
 * (esbuild's `define`, from package.json), so it is right wherever the package is installed and
 * whatever the current directory. Unbundled (tsc's dist/, the tests) it is read from the
 * package.json one directory up, where it sits beside dist/ and src/.
 */
import { readFileSync } from 'node:fs';

declare const LAFS_BACKUP_VERSION: string | undefined;

function fromPackageJson(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION: string = typeof LAFS_BACKUP_VERSION === 'string' ? LAFS_BACKUP_VERSION : fromPackageJson();
