/**
 * Picks the tree to back up: `source.path` is a path or a glob (minimatch syntax, per path
 * segment); with several matches the last in byte order is taken (`alphasort_last`), which
 * suits dated snapshot directories like /srv/backups/backup.2026-11-21. Only directories
 * count as matches of a glob.
 *
 * The chosen root is resolved (a symlink given as the source is followed); symlinks inside
 * the tree never are.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { minimatch, Minimatch } from 'minimatch';
import { AppError, describeErrno } from '../errors.js';

/** Glob characters minimatch gives a meaning to. A path without any is taken literally. */
const GLOB_CHARS = /[*?[\]{}()!+@]/;

function expand(pattern: string): string[] {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  let current = [absolute ? '/' : '.'];
  for (const seg of segments) {
    if (seg === '**') throw new AppError(`source.path: '**' is not supported in ${JSON.stringify(pattern)}`, 'config', 2);
    if (!new Minimatch(seg).hasMagic()) {
      current = current.map((c) => join(c, seg));
      continue;
    }
    const next: string[] = [];
    for (const dir of current) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) if (minimatch(n, seg)) next.push(join(dir, n));
    }
    current = next;
  }
  return current;
}

/** The source directory to back up, as an absolute real path. */
export function pickSource(pattern: string): string {
  const glob = GLOB_CHARS.test(pattern);
  const candidates = glob ? expand(pattern) : [pattern];
  // A glob picks among directories only: a stray file matching it (snapshot.log beside the
  // snapshot directories) is not a tree to back up.
  const existing = candidates.filter((c) => {
    try {
      return !glob || statSync(c).isDirectory();
    } catch {
      return false;
    }
  });
  if (!existing.length) {
    throw new AppError(`source.path: no directory matches ${JSON.stringify(pattern)}`, 'source');
  }
  existing.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const chosen = existing[existing.length - 1]!;
  let real: string;
  try {
    real = realpathSync(chosen);
    if (!statSync(real).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw new AppError(`source.path: ${JSON.stringify(chosen)} is not a directory we can back up: ${describeErrno(e)}`, 'source');
  }
  return real;
}
