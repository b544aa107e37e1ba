/** The tree a Python pattern is parsed into (pyregex-parse.ts), and what can be read off it. */

export class PyRegexError extends Error {}

export interface Flags {
  /** IGNORECASE */
  i: boolean;
  /** DOTALL */
  s: boolean;
  /** MULTILINE */
  m: boolean;
  /** VERBOSE */
  x: boolean;
  /** ASCII: \d \w \s \b are ASCII-only */
  a: boolean;
}

export type Category = 'd' | 'D' | 's' | 'S' | 'w' | 'W';
export type ClassItem = { t: 'char'; cp: number } | { t: 'range'; lo: number; hi: number } | { t: 'cat'; c: Category } | { t: 'dot' };

/** A pattern's tree. Every consuming atom (a literal, `.`, `\w`, a class) is a `set`. */
export type Node =
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'group'; body: Node; index?: number; name?: string }
  | { t: 'look'; body: Node; behind: boolean; negate: boolean }
  | { t: 'rep'; body: Node; min: number; max: number; lazy: boolean }
  | { t: 'set'; items: ClassItem[]; negate: boolean; f: Flags }
  | { t: 'assert'; kind: 'start' | 'end' | 'absStart' | 'absEnd' | 'bound' | 'notBound'; f: Flags }
  | { t: 'backref'; index: number; f: Flags };

export interface Parsed {
  root: Node;
  /** The flags in force at the top level (global flag groups included). */
  flags: Flags;
  /** Whether any group changes `i` for a part of the pattern (then case is matched by hand). */
  scopedCase: boolean;
  groups: number;
}

/** The shortest and longest text a node can match (Infinity: unbounded). */
export function width(n: Node): [number, number] {
  switch (n.t) {
    case 'set':
      return [1, 1];
    case 'assert':
    case 'look':
      return [0, 0];
    case 'backref':
      return [0, Infinity];
    case 'group':
      return width(n.body);
    case 'seq':
      return n.items.map(width).reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
    case 'alt': {
      const ws = n.alts.map(width);
      return [Math.min(...ws.map((w) => w[0])), Math.max(...ws.map((w) => w[1]))];
    }
    case 'rep': {
      const [lo, hi] = width(n.body);
      return [lo * n.min, n.max === Infinity ? (hi === 0 ? 0 : Infinity) : hi * n.max];
    }
  }
}
