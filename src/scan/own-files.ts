/**
 * The tool's own state inside the source — the queue file and its temporary files, the entry
 * cache with its -wal/-shm/-journal files and lock, the result file with its temporary files
 * and lock, the log file — is left out of the walk. It changes while it is read (every run
 * would end INCOMPLETE on cache.db-wal), it holds caps (the cache, the result file), and a
 * restore has no use for it. Matched by directory and name, so files that come and go during
 * the run (a -wal file, a temporary queue) are left out too.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, relative } from 'node:path';

/** One state file: its path, the other names it comes with (`name + suffix`) and name prefixes. */
export interface OwnFile {
  path: string;
  suffixes?: string[];
  prefixes?: string[];
}

/** Tells, for a name in one directory of the source, whether it is one of ours. */
export type OwnMatcher = (name: Buffer) => boolean;

export class OwnFiles {
  private readonly byDir = new Map<string, { names: Set<string>; prefixes: string[] }>();
  /** What is left out, as relative paths (a `*` for a prefix): for the log and the queue's selection. */
  readonly described: string[] = [];

  /** `source` is the real path of the source directory. */
  constructor(source: string, files: readonly OwnFile[]) {
    for (const f of files) {
      let dir: string;
      try {
        dir = realpathSync(dirname(f.path));
      } catch {
        continue;
      }
      const rel = relative(source, dir);
      if (rel === '..' || rel.startsWith('../') || rel.startsWith('/')) continue;
      const key = Buffer.from(rel, 'utf8').toString('latin1');
      const at = this.byDir.get(key) ?? { names: new Set<string>(), prefixes: [] };
      this.byDir.set(key, at);
      const base = basename(f.path);
      for (const s of ['', ...(f.suffixes ?? [])]) {
        at.names.add(Buffer.from(base + s, 'utf8').toString('latin1'));
        this.described.push(rel ? `${rel}/${base}${s}` : `${base}${s}`);
      }
      for (const p of f.prefixes ?? []) {
        at.prefixes.push(Buffer.from(base + p, 'utf8').toString('latin1'));
        this.described.push(rel ? `${rel}/${base}${p}*` : `${base}${p}*`);
      }
    }
    this.described.sort();
  }

  /** The matcher for the directory `rel` (relative path bytes), or undefined: nothing of ours there. */
  inDir(rel: Buffer): OwnMatcher | undefined {
    if (this.byDir.size === 0) return undefined;
    const at = this.byDir.get(rel.toString('latin1'));
    if (!at) return undefined;
    return (name) => {
      const n = name.toString('latin1');
      return at.names.has(n) || at.prefixes.some((p) => n.startsWith(p));
    };
  }
}
