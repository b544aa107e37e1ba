/**
 * Python's `re` syntax (3.11, str patterns) parsed into a small tree, following the rules of
 * CPython's own parser (re/_parser.py) construct by construct, so that a filter means what it
 * means in Python: `{,3}` is 0 to 3 repetitions, `{` that starts no repetition is a literal, `\Z`
 * is the very end, `$` is the end or before a final newline, `.` excludes only "\n", `\d`, `\w`,
 * `\s` and `\b` are Unicode unless `(?a)`, octal escapes, a `]` first in a class is a literal,
 * scoped flags `(?i:…)`, `(?-i:…)`, comments `(?#…)`, verbose mode. What Python refuses is
 * refused with its message. Constructs with no faithful JavaScript form are refused too, each
 * by name: conditionals `(?(1)…)`, atomic groups and possessive quantifiers (Python 3.11),
 * `\N{NAME}`, back-references inside a look-behind or under a scoped `(?i:…)`.
 *
 * One deliberate difference, kept from the tool's origins in Python 2: an inline global flag
 * group such as `(?i)` applies to the whole pattern wherever it stands (Python 3.11 accepts it
 * only at the start).
 */

import { PyRegexError, width, type Category, type ClassItem, type Flags, type Node, type Parsed } from './pyregex-ast.js';

const MAX_REPEAT = 0x7fffffff;
const DIGITS = /[0-9]/;
const OCT = /[0-7]/;
const HEX = /[0-9a-fA-F]/;
const ASCII_LETTER = /[a-zA-Z]/;
const ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
const GLOBAL_FLAGS = /^\(\?([aiLmsux]+)\)/;

/** Flags set by inline global flag groups anywhere (outside classes and escapes). */
function globalFlags(p: string): Flags {
  const f: Flags = { i: false, s: false, m: false, x: false, a: false };
  let u = false;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '[') {
      i++;
      if (p[i] === '^') i++;
      if (p[i] === ']') i++;
      while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
    } else if (c === '(' && p[i + 1] === '?') {
      const m = GLOBAL_FLAGS.exec(p.slice(i));
      if (!m) continue;
      for (const flag of m[1]!) {
        if (flag === 'L') throw new PyRegexError("bad inline flag: cannot use 'L' flag with a str pattern");
        if (flag === 'u') u = true;
        else f[flag as keyof Flags] = true;
      }
    }
  }
  if (f.a && u) throw new PyRegexError("bad inline flag: flags 'a', 'u' and 'L' are incompatible");
  return f;
}

export function parsePy(pattern: string): Parsed {
  return new Parser(pattern).parse();
}

class Parser {
  private pos = 0;
  private groups = 0;
  private readonly open = new Set<number>();
  private readonly names = new Map<string, number>();
  private behind = 0;
  private caseChanged = false;

  constructor(private readonly p: string) {}

  parse(): Parsed {
    const flags = globalFlags(this.p);
    const root = this.alternation(flags);
    if (this.pos < this.p.length) throw new PyRegexError(`unbalanced parenthesis at position ${this.pos}`);
    return { root, flags, scopedCase: this.caseChanged, groups: this.groups };
  }

  private peek(): string | undefined {
    return this.p[this.pos];
  }

  /** The next code point, consumed. */
  private cp(): number {
    const c = this.p.codePointAt(this.pos)!;
    this.pos += c > 0xffff ? 2 : 1;
    return c;
  }

  private error(msg: string): PyRegexError {
    return new PyRegexError(`${msg} at position ${this.pos}`);
  }

  private alternation(f: Flags): Node {
    const alts = [this.sequence(f)];
    while (this.peek() === '|') {
      this.pos++;
      alts.push(this.sequence(f));
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  private skipVerbose(f: Flags): void {
    if (!f.x) return;
    for (;;) {
      const c = this.peek();
      if (c !== undefined && /\s/.test(c)) this.pos++;
      else if (c === '#') {
        while (this.pos < this.p.length && this.p[this.pos] !== '\n') this.pos++;
      } else return;
    }
  }

  private sequence(f: Flags): Node {
    const items: Node[] = [];
    for (;;) {
      this.skipVerbose(f);
      const c = this.peek();
      if (c === undefined || c === '|' || c === ')') break;
      if (c === '*' || c === '+' || c === '?' || (c === '{' && this.repeatAhead())) {
        const start = this.pos;
        const [min, max] = this.quantifier();
        const last = items[items.length - 1];
        if (!last || last.t === 'assert') throw new PyRegexError(`nothing to repeat at position ${start}`);
        if (last.t === 'rep') throw new PyRegexError(`multiple repeat at position ${start}`);
        let lazy = false;
        if (this.peek() === '?') {
          this.pos++;
          lazy = true;
        } else if (this.peek() === '+') throw this.error('possessive quantifiers (Python 3.11) have no JavaScript form; not supported');
        items[items.length - 1] = { t: 'rep', body: last, min, max, lazy };
        continue;
      }
      const atom = this.atom(f);
      if (atom) items.push(atom);
    }
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  }

  /** Whether a `{` here starts a repetition (Python: `{m}`, `{m,}`, `{,n}`, `{m,n}`, `{,}`); else it is a literal. */
  private repeatAhead(): boolean {
    return /^\{\d*(,\d*)?\}/.test(this.p.slice(this.pos, this.pos + 24)) && this.p[this.pos + 1] !== '}';
  }

  private quantifier(): [number, number] {
    const c = this.p[this.pos++]!;
    if (c === '*') return [0, Infinity];
    if (c === '+') return [1, Infinity];
    if (c === '?') return [0, 1];
    const m = /^(\d*)(,(\d*))?\}/.exec(this.p.slice(this.pos))!;
    this.pos += m[0].length;
    const min = m[1] ? Number(m[1]) : 0;
    const max = m[2] === undefined ? min : m[3] ? Number(m[3]) : Infinity;
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) throw this.error('the repetition number is too large');
    if (max < min) throw this.error('min repeat greater than max repeat');
    return [min, max];
  }

  private set(items: ClassItem[], f: Flags, negate = false): Node {
    return { t: 'set', items, negate, f };
  }

  private atom(f: Flags): Node | undefined {
    const c = this.peek()!;
    if (c === '(') return this.group(f);
    if (c === '[') return this.charClass(f);
    if (c === '\\') return this.escape(f);
    this.pos++;
    if (c === '.') return this.set([{ t: 'dot' }], f);
    if (c === '^') return { t: 'assert', kind: 'start', f };
    if (c === '$') return { t: 'assert', kind: 'end', f };
    this.pos--;
    return this.set([{ t: 'char', cp: this.cp() }], f);
  }

  private escape(f: Flags): Node {
    const start = this.pos;
    this.pos++;
    if (this.peek() === undefined) throw new PyRegexError('bad escape (end of pattern)');
    const c = this.p[this.pos]!;
    if (c === 'A' || c === 'Z' || c === 'b' || c === 'B') {
      this.pos++;
      const kind = c === 'A' ? 'absStart' : c === 'Z' ? 'absEnd' : c === 'b' ? 'bound' : 'notBound';
      return { t: 'assert', kind, f };
    }
    if ('dDsSwW'.includes(c)) {
      this.pos++;
      return this.set([{ t: 'cat', c: c as Category }], f);
    }
    if (c === '0') {
      this.pos++;
      return this.set([{ t: 'char', cp: this.octal('0', 2) }], f);
    }
    if (DIGITS.test(c)) {
      // An octal escape of three digits, or a group reference (sigh, says CPython).
      const three = this.p.slice(this.pos, this.pos + 3);
      if (/^[0-7]{3}$/.test(three)) {
        this.pos += 3;
        const v = parseInt(three, 8);
        if (v > 0o377) throw new PyRegexError(`octal escape value \\${three} outside of range 0-0o377 at position ${start}`);
        return this.set([{ t: 'char', cp: v }], f);
      }
      const digits = /^\d\d?/.exec(this.p.slice(this.pos))![0];
      this.pos += digits.length;
      return this.backref(Number(digits), f, start);
    }
    const lit = this.literalEscape(start);
    if (lit !== undefined) return this.set([{ t: 'char', cp: lit }], f);
    throw new PyRegexError(`bad escape \\${c} at position ${start}`);
  }

  /** Escapes that stand for one character, the same in and out of classes (`\b` aside); undefined: not one. */
  private literalEscape(start: number): number | undefined {
    const c = this.p[this.pos]!;
    if (c !== 'b' && ESCAPES[c] !== undefined) {
      this.pos++;
      return ESCAPES[c];
    }
    const hex = (n: number) => {
      const h = this.p.slice(this.pos + 1, this.pos + 1 + n);
      if (h.length !== n || ![...h].every((x) => HEX.test(x))) throw new PyRegexError(`incomplete escape \\${c}${h.replace(/[^0-9a-fA-F].*$/, '')} at position ${start}`);
      this.pos += 1 + n;
      return parseInt(h, 16);
    };
    if (c === 'x') return hex(2);
    if (c === 'u') return hex(4);
    if (c === 'U') {
      const v = hex(8);
      if (v > 0x10ffff) throw new PyRegexError(`bad escape \\U${v.toString(16).padStart(8, '0')} at position ${start}`);
      return v;
    }
    if (c === 'N') throw new PyRegexError(`\\N{...} (a character by its Unicode name) is not supported; write the character itself or \\uXXXX (position ${start})`);
    if (ASCII_LETTER.test(c) || DIGITS.test(c)) return undefined;
    return this.cp();
  }

  private octal(first: string, more: number): number {
    let s = first;
    while (more-- > 0 && OCT.test(this.peek() ?? "")) s += this.p[this.pos++];
    const v = parseInt(s, 8);
    if (v > 0o377) throw this.error(`octal escape value \\${s} outside of range 0-0o377`);
    return v;
  }

  private backref(index: number, f: Flags, start: number): Node {
    if (index >= this.groups + 1 || index === 0) throw new PyRegexError(`invalid group reference ${index} at position ${start + 1}`);
    if (this.open.has(index)) throw new PyRegexError(`cannot refer to an open group at position ${start}`);
    if (this.behind) throw new PyRegexError(`a group reference inside a look-behind is not supported (position ${start})`);
    return { t: 'backref', index, f };
  }

  private charClass(f: Flags): Node {
    const start = this.pos;
    this.pos++;
    const negate = this.peek() === '^';
    if (negate) this.pos++;
    const items: ClassItem[] = [];
    for (;;) {
      if (this.peek() === undefined) throw new PyRegexError(`unterminated character set at position ${start}`);
      if (this.peek() === ']' && items.length) {
        this.pos++;
        break;
      }
      const here = this.pos;
      const one = this.classAtom();
      if (this.peek() === '-') {
        this.pos++;
        if (this.peek() === undefined) throw new PyRegexError(`unterminated character set at position ${start}`);
        if (this.peek() === ']') {
          this.pos++;
          items.push(one, { t: 'char', cp: 0x2d });
          break;
        }
        const other = this.classAtom();
        if (one.t !== 'char' || other.t !== 'char' || other.cp < one.cp) throw new PyRegexError(`bad character range ${this.p.slice(here, this.pos)} at position ${here}`);
        items.push({ t: 'range', lo: one.cp, hi: other.cp });
      } else items.push(one);
    }
    return this.set(items, f, negate);
  }

  private classAtom(): ClassItem {
    if (this.peek() !== '\\') return { t: 'char', cp: this.cp() };
    const start = this.pos;
    this.pos++;
    const c = this.peek();
    if (c === undefined) throw new PyRegexError('bad escape (end of pattern)');
    if ('dDsSwW'.includes(c)) {
      this.pos++;
      return { t: 'cat', c: c as Category };
    }
    if (c === 'b') {
      this.pos++;
      return { t: 'char', cp: 8 };
    }
    if (OCT.test(c)) {
      this.pos++;
      return { t: 'char', cp: this.octal(c, 2) };
    }
    const lit = this.literalEscape(start);
    if (lit === undefined) throw new PyRegexError(`bad escape \\${c} at position ${start}`);
    return { t: 'char', cp: lit };
  }

  private group(f: Flags): Node | undefined {
    const start = this.pos;
    this.pos++;
    if (this.peek() !== '?') return this.capture(f, start);
    this.pos++;
    const c = this.peek();
    if (c === undefined) throw new PyRegexError('unexpected end of pattern');
    if (c === ':') {
      this.pos++;
      return this.body(f, start, (body) => ({ t: 'group', body }));
    }
    if (c === 'P') {
      this.pos++;
      if (this.peek() === '<') {
        this.pos++;
        const name = this.until('>', 'group name');
        return this.capture(f, start, name);
      }
      if (this.peek() === '=') {
        this.pos++;
        const name = this.until(')', 'group name');
        const index = this.names.get(name);
        if (index === undefined) throw new PyRegexError(`unknown group name '${name}' at position ${start}`);
        return this.backref(index, f, start);
      }
      throw new PyRegexError(`unknown extension ?P${this.peek() ?? ''} at position ${start + 1}`);
    }
    if (c === '#') {
      const end = this.p.indexOf(')', this.pos);
      if (end < 0) throw new PyRegexError(`missing ), unterminated comment at position ${start}`);
      this.pos = end + 1;
      return undefined;
    }
    if (c === '=' || c === '!' || c === '<') {
      let behind = false;
      this.pos++;
      let kind = c;
      if (c === '<') {
        const k = this.peek();
        if (k !== '=' && k !== '!') throw new PyRegexError(`unknown extension ?<${k ?? ''} at position ${start + 1}`);
        this.pos++;
        behind = true;
        kind = k;
      }
      if (behind) this.behind++;
      const node = this.body(f, start, (body) => {
        const [lo, hi] = width(body);
        if (behind && lo !== hi) throw new PyRegexError(`look-behind requires fixed-width pattern (position ${start})`);
        return { t: 'look', body, behind, negate: kind === '!' };
      });
      if (behind) this.behind--;
      return node;
    }
    if (c === '(') throw new PyRegexError(`conditional groups (?(...)...) have no JavaScript form; not supported (position ${start})`);
    if (c === '>') throw new PyRegexError(`atomic groups (?>...) (Python 3.11) have no JavaScript form; not supported (position ${start})`);
    if (/[aiLmsux-]/.test(c)) return this.flagGroup(f, start);
    throw new PyRegexError(`unknown extension ?${c} at position ${start + 1}`);
  }

  /** `(?flags)` (global: applied already) or `(?on-off:...)` (scoped). */
  private flagGroup(f: Flags, start: number): Node | undefined {
    const m = /^([aiLmsux]*)(?:-([imsx]*))?([:)])/.exec(this.p.slice(this.pos));
    if (!m) throw new PyRegexError(`bad inline flag at position ${this.pos}`);
    const [all, on = '', off, end] = m;
    if (on.includes('L')) throw new PyRegexError("bad inline flag: cannot use 'L' flag with a str pattern");
    if (off !== undefined && !off) throw new PyRegexError(`missing flag at position ${start}`);
    if (end === ')') {
      if (off !== undefined || !on) throw new PyRegexError(`missing : at position ${start}`);
      this.pos += all.length;
      return undefined;
    }
    if (on.includes('a') && on.includes('u')) throw new PyRegexError("bad inline flag: flags 'a', 'u' and 'L' are incompatible");
    for (const x of off ?? '') if (on.includes(x)) throw new PyRegexError('bad inline flag: flag turned on and off');
    this.pos += all.length;
    const g: Flags = { ...f };
    for (const x of on) if (x !== 'u') g[x as keyof Flags] = true;
    if (on.includes('u')) g.a = false;
    for (const x of off ?? '') g[x as keyof Flags] = false;
    if (g.i !== f.i) this.caseChanged = true;
    return this.body(g, start, (body) => ({ t: 'group', body }));
  }

  private capture(f: Flags, start: number, name?: string): Node {
    if (name !== undefined) {
      if (!name) throw new PyRegexError(`missing group name at position ${start}`);
      if (!/^[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*$/u.test(name)) throw new PyRegexError(`bad character in group name '${name}' at position ${start}`);
      if (this.names.has(name)) throw new PyRegexError(`redefinition of group name '${name}' at position ${start}`);
    }
    const index = ++this.groups;
    if (name !== undefined) this.names.set(name, index);
    this.open.add(index);
    const node = this.body(f, start, (body) => ({ t: 'group', body, index, name }));
    this.open.delete(index);
    return node;
  }

  private body(f: Flags, start: number, make: (body: Node) => Node): Node {
    const body = this.alternation(f);
    if (this.peek() !== ')') throw new PyRegexError(`missing ), unterminated subpattern at position ${start}`);
    this.pos++;
    return make(body);
  }

  private until(end: string, what: string): string {
    const i = this.p.indexOf(end, this.pos);
    if (i < 0) throw new PyRegexError(`missing ${end}, unterminated name at position ${this.pos}`);
    const s = this.p.slice(this.pos, i);
    if (!s) throw new PyRegexError(`missing ${what} at position ${this.pos}`);
    this.pos = i + 1;
    return s;
  }
}
