/**
 * Exclude patterns as people know them from .gitignore (and restic's --exclude): a pattern
 * without a slash matches a name at any depth (`*.o`, `node_modules`); one with a slash at its
 * start or in its middle is anchored at the source's top (`/tmp`, `build/cache`); a trailing
 * slash matches directories only (`cache/`); `*` and `?` match within one name, `[a-z]` and
 * `[!a-z]` one character of a class, `**` any number of names (`**\/logs`, `a/**\/b`, `dist/**`);
 * `\` escapes the next character; a leading `!` takes back in what an earlier pattern left out.
 * The last pattern that matches decides (gitignore's rule); a directory left out is not read,
 * so nothing beneath it can be taken back in.
 *
 * Matched by a small glob matcher rather than by regexes (minimatch's): a backtracking regex for
 * `*a*a*a*a*b` takes time polynomial in a name's length, and one crafted file name must not
 * stall the walk. This matcher backs up only to the last `*` (or `**`) it passed, so a name of
 * n characters against a pattern of m costs at most n·m steps.
 */
import { ConfigError } from '../errors.js';

/** One token of a name pattern. */
type Token = { lit: number } | { any: true } | { one: true } | { cls: [number, number][]; negate: boolean };
/** A path pattern: names (tokens), or `**` (any number of names). */
type Segment = Token[] | '**';

export interface Exclude {
  /** As written (for messages and the queue's selection). */
  text: string;
  negate: boolean;
  dirOnly: boolean;
  /** Anchored: matched against the whole relative path; else against the last name. */
  anchored: boolean;
  segments: Segment[];
}

function parseClass(p: string, i: number): { cls: [number, number][]; negate: boolean; end: number } | undefined {
  let j = i + 1;
  let negate = false;
  if (p[j] === '!' || p[j] === '^') {
    negate = true;
    j++;
  }
  const cls: [number, number][] = [];
  let first = true;
  while (j < p.length && (p[j] !== ']' || first)) {
    first = false;
    let c = p.codePointAt(j)!;
    if (p[j] === '\\' && j + 1 < p.length) c = p.codePointAt(++j)!;
    j += c > 0xffff ? 2 : 1;
    if (p[j] === '-' && j + 1 < p.length && p[j + 1] !== ']') {
      let d = p.codePointAt(j + 1)!;
      let k = j + 1;
      if (p[k] === '\\' && k + 1 < p.length) d = p.codePointAt(++k)!;
      if (d < c) return undefined;
      cls.push([c, d]);
      j = k + (d > 0xffff ? 2 : 1);
    } else cls.push([c, c]);
  }
  if (j >= p.length) return undefined; // no closing ]: a literal [, as fnmatch takes it
  return { cls, negate, end: j + 1 };
}

function parseName(p: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < p.length; ) {
    const ch = p[i]!;
    if (ch === '*') {
      if (out[out.length - 1] && 'any' in out[out.length - 1]!) {
        i++;
        continue;
      }
      out.push({ any: true });
      i++;
    } else if (ch === '?') {
      out.push({ one: true });
      i++;
    } else if (ch === '[') {
      const c = parseClass(p, i);
      if (c) {
        out.push({ cls: c.cls, negate: c.negate });
        i = c.end;
      } else {
        out.push({ lit: 0x5b });
        i++;
      }
    } else {
      if (ch === '\\' && i + 1 < p.length) i++;
      const cp = p.codePointAt(i)!;
      out.push({ lit: cp });
      i += cp > 0xffff ? 2 : 1;
    }
  }
  return out;
}

/** Compiles one pattern; `where` names it in errors. */
export function compileExclude(text: string, where: string): Exclude {
  let p = text;
  let negate = false;
  if (p.startsWith('!')) {
    negate = true;
    p = p.slice(1);
  } else if (p.startsWith('\\!') || p.startsWith('\\#')) p = p.slice(1);
  // Trailing spaces are dropped unless escaped, as gitignore does.
  p = p.replace(/(?<!\\) +$/, '');
  let dirOnly = false;
  if (p.endsWith('/')) {
    dirOnly = true;
    p = p.replace(/\/+$/, '');
  }
  if (!p) throw new ConfigError(`${where}: ${JSON.stringify(text)} is not a pattern (nothing to match)`);
  const anchored = p.includes('/');
  const parts = p.replace(/^\/+/, '').split('/').filter((s) => s !== '');
  if (parts.some((s) => s === '.' || s === '..')) throw new ConfigError(`${where}: ${JSON.stringify(text)}: "." and ".." have no meaning in an exclude pattern`);
  const segments: Segment[] = [];
  for (const s of parts) {
    if (s === '**') {
      if (segments[segments.length - 1] !== '**') segments.push('**');
    } else segments.push(parseName(s));
  }
  return { text, negate, dirOnly, anchored, segments };
}

/** Compiles `exclude` patterns; `key` names the configuration key in errors. */
export function compileExcludes(patterns: readonly string[], key = 'exclude'): Exclude[] {
  return patterns.map((p, i) => compileExclude(p, `${key}[${i}]`));
}

function tokenMatches(t: Token, c: number): boolean {
  if ('lit' in t) return t.lit === c;
  if ('one' in t) return true;
  if ('cls' in t) {
    const inside = t.cls.some(([a, b]) => c >= a && c <= b);
    return inside !== t.negate;
  }
  return false;
}

/** Whether `name` (code points) matches `tokens`: backs up only to the last `*`, at most n·m steps. */
function nameMatches(tokens: Token[], name: number[]): boolean {
  let t = 0;
  let n = 0;
  let starT = -1;
  let starN = 0;
  while (n < name.length) {
    const tok = tokens[t];
    if (tok && 'any' in tok) {
      starT = t++;
      starN = n;
    } else if (tok && tokenMatches(tok, name[n]!)) {
      t++;
      n++;
    } else if (starT >= 0) {
      t = starT + 1;
      n = ++starN;
    } else return false;
  }
  while (t < tokens.length && 'any' in tokens[t]!) t++;
  return t === tokens.length;
}

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

/** Whether path `parts` match `segments` (`**` any number of names): backs up only to the last `**`. */
function pathMatches(segments: Segment[], parts: string[]): boolean {
  const cps = new Map<number, number[]>();
  const name = (i: number) => {
    let c = cps.get(i);
    if (!c) cps.set(i, (c = codePoints(parts[i]!)));
    return c;
  };
  let s = 0;
  let p = 0;
  let starS = -1;
  let starP = 0;
  while (p < parts.length) {
    const seg = segments[s];
    if (seg === '**') {
      starS = s++;
      starP = p;
    } else if (seg && nameMatches(seg, name(p))) {
      s++;
      p++;
    } else if (starS >= 0) {
      s = starS + 1;
      p = ++starP;
    } else return false;
  }
  while (s < segments.length && segments[s] === '**') s++;
  return s === segments.length;
}

/** Whether `e` matches the entry at `rel` (a path relative to the source, names joined by `/`). */
export function excludeMatches(e: Exclude, rel: string, isDir: boolean): boolean {
  if (e.dirOnly && !isDir) return false;
  if (!e.anchored) {
    const slash = rel.lastIndexOf('/');
    const seg = e.segments[0]!;
    return seg === '**' || nameMatches(seg, codePoints(slash < 0 ? rel : rel.slice(slash + 1)));
  }
  return pathMatches(e.segments, rel.split('/'));
}

/** The pattern that decides for `rel` (the last one matching), or undefined. */
export function decidingExclude(list: readonly Exclude[], rel: string, isDir: boolean): Exclude | undefined {
  for (let i = list.length - 1; i >= 0; i--) if (excludeMatches(list[i]!, rel, isDir)) return list[i];
  return undefined;
}

/** Patterns from a file: one a line; blank lines and lines starting with # are skipped. */
export function excludeFileLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
}
