/**
 * What a walk of a source keeps: the ordered `filter` regexes first (they keep their meaning),
 * then the excludes people know from restic, borg and tar — gitignore-like patterns
 * (`exclude`, `--exclude`, `--exclude-file`), directories marked by a file (`exclude_if_present`,
 * `exclude_caches`: a CACHEDIR.TAG that starts with its signature), and `one_file_system`. An
 * entry is kept when both keep it. A marked directory, or one another file system is mounted
 * on, is kept as an empty directory (restic's and tar's rule): nothing in it is read.
 *
 * Phase 1's walk and `diff`'s local side use the same Selector, so `diff BACKUP ./dir` does not
 * report as added what the backup leaves out.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { decidingExclude, type Exclude, compileExcludes } from './excludes.js';
import { firstMatch, type Rule } from '../core/rules.js';
import { compileRules } from './filters.js';

/** The first line of a cache directory tag (https://bford.info/cachedir/). */
export const CACHEDIR_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';
export const CACHEDIR_TAG = 'CACHEDIR.TAG';

/** The configuration keys that decide what a walk keeps. */
export interface SelectionConfig {
  filter: string[];
  exclude: string[];
  exclude_if_present: string[];
  exclude_caches: boolean;
  one_file_system: boolean;
}

/** The configuration's keys a selection is made of (the configuration has them; scan/ does not know it). */
type SelectionKeys = SelectionConfig & { excludeFromFiles: string[] };

/** What decides a walk, from the configuration: `exclude` with the patterns of `exclude_files` after it. */
export function selectionOf(c: SelectionKeys): SelectionConfig {
  return { filter: c.filter, exclude: [...c.exclude, ...c.excludeFromFiles], exclude_if_present: c.exclude_if_present, exclude_caches: c.exclude_caches, one_file_system: c.one_file_system };
}

/** The same without the filter rules (phase 1 takes those apart). */
export function excludesOf(c: SelectionKeys): Omit<SelectionConfig, 'filter'> {
  const { filter: _filter, ...rest } = selectionOf(c);
  return rest;
}

/** Why an entry is left out: the rule or pattern that decided. */
export interface LeftOut {
  key: 'filter' | 'exclude';
  index: number;
  text: string;
}

/** Reads the first bytes of a file in the directory being walked (no symlink followed, never blocking). */
function readHead(path: Buffer | string, n: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export class Selector {
  readonly rules: Rule[];
  readonly excludes: Exclude[];
  private readonly markers: Set<string>;
  private readonly caches: boolean;
  readonly oneFileSystem: boolean;
  /** True when anything besides the tree decides (the walk then computes each entry's text path). */
  readonly byPath: boolean;
  /** True when a directory's names decide whether its contents are read. */
  readonly byContents: boolean;

  constructor(readonly config: SelectionConfig) {
    this.rules = compileRules(config.filter);
    this.excludes = compileExcludes(config.exclude);
    this.markers = new Set(config.exclude_if_present);
    this.caches = config.exclude_caches;
    this.oneFileSystem = config.one_file_system;
    this.byPath = this.rules.length > 0 || this.excludes.length > 0;
    this.byContents = this.markers.size > 0 || this.caches;
  }

  /**
   * Why the entry at `rel` (relative path text, no leading slash) is left out, or undefined
   * when it is kept: the filter rules first, then the exclude patterns.
   */
  leftOut(rel: string, isDir: boolean): LeftOut | undefined {
    if (this.rules.length) {
      const shown = `/${rel}${isDir ? '/' : ''}`;
      const r = firstMatch(this.rules, shown);
      if (r && !r.include) {
        const index = this.rules.indexOf(r);
        return { key: 'filter', index, text: this.config.filter[index]! };
      }
    }
    if (this.excludes.length) {
      const e = decidingExclude(this.excludes, rel, isDir);
      if (e && !e.negate) {
        const index = this.excludes.indexOf(e);
        return { key: 'exclude', index, text: e.text };
      }
    }
    return undefined;
  }

  /**
   * Whether a directory's contents are left out, from the names in it: a marker of
   * `exclude_if_present`, or a CACHEDIR.TAG that starts with its signature (`dir` is the
   * directory's path, or a bare-name prefix when the walk is in it). Returns the marker's name.
   */
  markedBy(names: readonly Buffer[], dir: Buffer | undefined): string | undefined {
    if (!this.byContents) return undefined;
    for (const n of names) {
      const name = n.toString('utf8');
      if (this.markers.has(name)) return name;
      if (this.caches && name === CACHEDIR_TAG) {
        const path = dir ? Buffer.concat([dir, Buffer.from('/'), n]) : n;
        const head = readHead(path, CACHEDIR_SIGNATURE.length);
        if (head?.toString('latin1') === CACHEDIR_SIGNATURE) return name;
      }
    }
    return undefined;
  }

  /** What decides which entries a walk lists, for the queue's header (phase1.ts selectionId). */
  describe(): Record<string, unknown> {
    const c = this.config;
    return { filter: c.filter, exclude: c.exclude, exclude_if_present: c.exclude_if_present, exclude_caches: c.exclude_caches, one_file_system: c.one_file_system };
  }
}
