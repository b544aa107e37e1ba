/**
 * Ordered include/exclude rules on paths: `+REGEX` includes, `-REGEX` excludes; the path
 * matched is the relative path with a leading `/`, and a directory's has a trailing `/`.
 * The first rule whose regex is found in the path (a search, not a full match) decides; a
 * path no rule matches is included.
 *
 * Regexes are Python's (pyregex.ts), and one that could backtrack more than linearly in the
 * length of a path is refused here, when the configuration is loaded (regex-linear.ts).
 *
 * The same machinery selects files for xz compression (`destination.encoding.xz.path_filter`),
 * where a rule may also be `[SIZE, 'REGEX']`: matching files are compressed from SIZE bytes.
 */
import { ConfigError } from '../errors.js';
import { pyRegex, PyRegexError } from './pyregex.js';
import { SlowRegexError } from './regex-linear.js';
import type { Rule } from '../core/rules.js';

function compileOne(text: string, where: string, allowBare: boolean): Omit<Rule, 'minSize'> {
  const sign = text[0];
  if (sign !== '+' && sign !== '-' && !allowBare) {
    throw new ConfigError(`${where}: rule ${JSON.stringify(text)} must start with '+' (include) or '-' (exclude)`);
  }
  const source = sign === '+' || sign === '-' ? text.slice(1) : text;
  try {
    return { include: sign !== '-', re: pyRegex(source) };
  } catch (e) {
    if (e instanceof SlowRegexError) throw new ConfigError(`${where}: rule ${JSON.stringify(text)} is refused: ${e.message}`);
    const reason = e instanceof PyRegexError ? e.message : String(e);
    throw new ConfigError(`${where}: rule ${JSON.stringify(text)} is not a valid regular expression: ${reason}`);
  }
}

/** Compiles `filter` rules; `key` names the configuration key in errors. */
export function compileRules(rules: string[], key = 'filter'): Rule[] {
  return rules.map((r, i) => compileOne(r, `${key}[${i}]`, false));
}

/** Compiles `path_filter` rules: strings as in `filter`, or `[SIZE, 'REGEX']` pairs. */
export function compileSizeRules(rules: (string | [number, string])[], key = 'destination.encoding.xz.path_filter'): Rule[] {
  return rules.map((r, i) => {
    if (typeof r === 'string') return compileOne(r, `${key}[${i}]`, false);
    const [size, text] = r;
    return { ...compileOne(text, `${key}[${i}]`, true), minSize: size };
  });
}

/** Compiles bare regexes (`compressed_names`): each a rule that matches. */
export function compileNameRules(list: string[], key: string): Rule[] {
  return list.map((r, i) => compileOne(r, `${key}[${i}]`, true));
}
