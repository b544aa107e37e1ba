/**
 * A compiled include/exclude rule and how an ordered list of them decides: the first rule whose
 * regex is found in the path decides; a path no rule matches is included. The walk's `filter`
 * and the compression's `path_filter` and `compressed_names` use them; scan/filters.ts compiles
 * them from the configuration's text (Python regexes, refused when they could backtrack).
 */

export interface Rule {
  include: boolean;
  re: RegExp;
  /** Compression rules only: the size from which a matching file is compressed. */
  minSize?: number;
}

/** The first rule matching `path` decides; undefined when none does. */
export function firstMatch(rules: Rule[], path: string): Rule | undefined {
  for (const r of rules) {
    r.re.lastIndex = 0;
    if (r.re.test(path)) return r;
  }
  return undefined;
}

/** Whether the walk keeps `path` (`/rel/path`, or `/rel/dir/` for a directory). */
export function included(rules: Rule[], path: string): boolean {
  return firstMatch(rules, path)?.include ?? true;
}
