/**
 * Python regular expressions (as the original tool's configurations are written) turned into
 * JavaScript ones that mean the same, and refused when they could backtrack without bound.
 *
 * The pattern is parsed by Python's rules (pyregex-parse.ts) and written out construct by
 * construct with the `v` flag, never leaving a meaning to JavaScript's defaults where they
 * differ: every literal is written by code point; `.` is "anything but \n"; `^`, `$`, `\A`,
 * `\Z` and the MULTILINE forms are spelled out; `\d`, `\w`, `\s`, `\b` are Unicode (Python 3's
 * str semantics: `\p{Nd}`, `[\p{L}\p{N}_]`, Python's own whitespace) or ASCII under `(?a)`;
 * `{,n}` becomes `{0,n}`. IGNORECASE is JavaScript's `i` flag when it covers the whole pattern,
 * and is done by hand (each letter as the class of its cases) when a scoped group switches it.
 *
 * Then regex-linear.ts checks that matching cannot backtrack more than linearly in the path's
 * length at a start position; a pattern that could (`(a+)+$`, `(a|a)*$`, `.*a.*b`) is refused
 * when the configuration is loaded, so one crafted file name can never stall a backup.
 */
import { caseVariants } from './charset.js';
import { checkLinear } from './regex-linear.js';
import { PyRegexError, type ClassItem, type Flags, type Node } from './pyregex-ast.js';
import { parsePy } from './pyregex-parse.js';

export { PyRegexError } from './pyregex-ast.js';

const WORD = '\\p{L}\\p{N}_';
const ASCII_WORD = 'A-Za-z0-9_';
/** Python's str.isspace(): \t\n\v\f\r, \x1c-\x1f, space, \x85, \xa0 and the Unicode spaces. */
const SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const ASCII_SPACE = '\\t-\\r\\x20';

/**
 * Python's IGNORECASE also takes "i", "I", "İ" and "ı" for one another (by their lowercase
 * mappings); JavaScript's `i` flag (case folding) does not: they are written out as a class.
 */
const DOTTED_I = [0x49, 0x69, 0x130, 0x131];

function lit(cp: number): string {
  return /[A-Za-z0-9]/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : `\\u{${cp.toString(16)}}`;
}

class Emitter {
  constructor(
    /** IGNORECASE is done by hand here (a scoped group switches it somewhere). */
    private readonly byHand: boolean,
  ) {}

  node(n: Node): string {
    switch (n.t) {
      case 'seq':
        return n.items.map((x) => this.node(x)).join('');
      case 'alt':
        return `(?:${n.alts.map((x) => this.node(x)).join('|')})`;
      case 'group':
        return n.index === undefined ? `(?:${this.node(n.body)})` : n.name !== undefined ? `(?<${n.name}>${this.node(n.body)})` : `(${this.node(n.body)})`;
      case 'look':
        return `(?${n.behind ? '<' : ''}${n.negate ? '!' : '='}${this.node(n.body)})`;
      case 'rep': {
        const q = n.min === 0 && n.max === Infinity ? '*' : n.min === 1 && n.max === Infinity ? '+' : n.min === 0 && n.max === 1 ? '?' : `{${n.min},${n.max === Infinity ? '' : n.max}}`;
        return `(?:${this.node(n.body)})${q}${n.lazy ? '?' : ''}`;
      }
      case 'backref':
        if (this.byHand && n.f.i) throw new PyRegexError('a group reference matched ignoring case is not supported in a pattern that switches case with a scoped (?i:...) or (?-i:...)');
        return `(?:\\${n.index})`;
      case 'assert':
        return this.assertion(n.kind, n.f);
      case 'set':
        return this.set(n.items, n.negate, n.f);
    }
  }

  private assertion(kind: 'start' | 'end' | 'absStart' | 'absEnd' | 'bound' | 'notBound', f: Flags): string {
    const w = f.a ? ASCII_WORD : WORD;
    switch (kind) {
      case 'absStart':
        return '^';
      case 'absEnd':
        return '$';
      case 'start':
        return f.m ? '(?<![^\\n])' : '^';
      case 'end':
        // Python: the end, or just before a newline that ends the string.
        return f.m ? '(?![^\\n])' : '(?=\\n?$)';
      case 'bound':
        return `(?:(?<=[${w}])(?![${w}])|(?<![${w}])(?=[${w}]))`;
      case 'notBound':
        return `(?:(?<=[${w}])(?=[${w}])|(?<![${w}])(?![${w}]))`;
    }
  }

  /** A class item as v-mode class contents. */
  private item(it: ClassItem, f: Flags): string {
    const fold = this.byHand && f.i;
    const dotted = !this.byHand && f.i;
    switch (it.t) {
      case 'char':
        if (dotted && DOTTED_I.includes(it.cp)) return DOTTED_I.map(lit).join('');
        return fold ? caseVariants(it.cp, f.a).map(lit).join('') : lit(it.cp);
      case 'range': {
        if (dotted && DOTTED_I.some((c) => c >= it.lo && c <= it.hi)) return `${lit(it.lo)}-${lit(it.hi)}${DOTTED_I.map(lit).join('')}`;
        if (!fold) return `${lit(it.lo)}-${lit(it.hi)}`;
        if (it.hi - it.lo > 4096) throw new PyRegexError(`a character range this wide (${lit(it.lo)}-${lit(it.hi)}) under a scoped (?i:...) is not supported`);
        const all: string[] = [];
        for (let c = it.lo; c <= it.hi; c++) all.push(...caseVariants(c, f.a).map(lit));
        return `${lit(it.lo)}-${lit(it.hi)}${all.join('')}`;
      }
      case 'dot':
        return f.s ? '\\p{Any}' : '[^\\n]';
      case 'cat':
        switch (it.c) {
          case 'd':
            return f.a ? '0-9' : '\\p{Nd}';
          case 'D':
            return f.a ? '[^0-9]' : '\\P{Nd}';
          case 'w':
            return f.a ? ASCII_WORD : WORD;
          case 'W':
            return `[^${f.a ? ASCII_WORD : WORD}]`;
          case 's':
            return f.a ? ASCII_SPACE : SPACE;
          case 'S':
            return `[^${f.a ? ASCII_SPACE : SPACE}]`;
        }
    }
  }

  private set(items: ClassItem[], negate: boolean, f: Flags): string {
    const one = items.length === 1 && !negate ? items[0]! : undefined;
    if (one?.t === 'char' && !f.i) return lit(one.cp);
    if (one?.t === 'char' && !this.byHand && !DOTTED_I.includes(one.cp)) return lit(one.cp);
    if (one?.t === 'dot') return f.s ? '\\p{Any}' : '[^\\n]';
    return `[${negate ? '^' : ''}${items.map((it) => this.item(it, f)).join('')}]`;
  }
}

/** The JavaScript RegExp for a Python pattern; throws a PyRegexError saying what is wrong. */
export function pyRegex(pattern: string): RegExp {
  const parsed = parsePy(pattern);
  const byHand = parsed.scopedCase || (parsed.flags.i && parsed.flags.a);
  const source = new Emitter(byHand).node(parsed.root);
  let re: RegExp;
  try {
    re = new RegExp(source, parsed.flags.i && !byHand ? 'iv' : 'v');
  } catch (e) {
    throw new PyRegexError((e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, ''));
  }
  checkLinear(parsed);
  return re;
}
