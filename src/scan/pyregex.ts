/**
 * Python 2 regular expressions, as the original tool's configurations are written, turned
 * into JavaScript ones:
 *  - an inline global flag group such as `(?i)` applies to the whole pattern wherever it
 *    stands (Python 2 semantics), so it is removed and becomes a RegExp flag;
 *  - `(?P<name>…)` and `(?P=name)` become `(?<name>…)` and `\k<name>`;
 *  - `\A`, `\Z` anchor at the very start and end;
 *  - `$` (without `(?m)`) matches at the end or before a final newline, as in Python;
 *  - `(?x)` verbose patterns lose their unescaped whitespace and comments.
 */

export class PyRegexError extends Error {}

const FLAG_GROUP = /^\(\?([aiLmsux]+)\)/;

export function pyRegex(pattern: string): RegExp {
  let flags = '';
  let verbose = false;
  let multiline = false;
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw new PyRegexError('pattern ends with a lone backslash');
      if (!inClass && next === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && next === 'Z') out += '(?![\\s\\S])';
      else out += ch + next;
      i += 2;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      i++;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += ch;
      // A ']' right after '[' or '[^' is a literal in Python; JavaScript needs it escaped.
      let j = i + 1;
      if (pattern[j] === '^') out += pattern[j++];
      if (pattern[j] === ']') {
        out += '\\]';
        j++;
      }
      i = j;
      continue;
    }
    if (ch === '(' && pattern[i + 1] === '?') {
      const m = FLAG_GROUP.exec(pattern.slice(i));
      if (m) {
        for (const f of m[1]!) {
          if (f === 'i' || f === 's') flags += flags.includes(f) ? '' : f;
          else if (f === 'm') multiline = true;
          else if (f === 'x') verbose = true;
          // 'u', 'L', 'a': Unicode/locale/ASCII classes; JavaScript's classes are ASCII already.
        }
        i += m[0].length;
        continue;
      }
      if (pattern.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
        continue;
      }
      const back = /^\(\?P=(\w+)\)/.exec(pattern.slice(i));
      if (back) {
        out += `\\k<${back[1]}>`;
        i += back[0].length;
        continue;
      }
    }
    if (ch === '$') {
      out += multiline ? '$' : '(?=\\n?(?![\\s\\S]))';
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  if (verbose) out = stripVerbose(out);
  if (multiline) flags += 'm';
  try {
    return new RegExp(out, flags);
  } catch (e) {
    throw new PyRegexError((e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, ''));
  }
}

/** `(?x)`: drops unescaped whitespace and `#` comments outside character classes. */
function stripVerbose(p: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '\\') {
      out += ch + (p[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
    } else if (ch === '[') {
      inClass = true;
      out += ch;
    } else if (ch === '#') {
      while (i < p.length && p[i] !== '\n') i++;
    } else if (!/\s/.test(ch)) out += ch;
  }
  return out;
}
