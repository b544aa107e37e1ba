/**
 * Refuses, when the configuration is loaded, a filter regex whose matching could take more than
 * linear time in the length of the path at one start position — the catastrophic backtracking
 * that let `(a+)+$` against a 35-character name stall phase 1 for minutes, deaf to signals.
 *
 * A backtracking matcher (V8's, Python's) only blows up when a part of the pattern can match
 * the same text in more than one way and what follows then fails. That is a property of the
 * pattern's automaton, decided here exactly as the literature does (Weideman et al., "Analyzing
 * matching time behavior of backtracking regular expression matchers by using ambiguity of NFA",
 * 2016), over a Thompson automaton whose ε-paths are counted (so `(a*)*` is two ways, not one):
 *
 *  - exponential: a state from which two different paths come back to it reading the same text
 *    (in the product automaton, a cycle through a diagonal and an off-diagonal state, or over a
 *    transition that ε-paths reach twice);
 *  - polynomial: two different states p and q, each on a cycle reading some text w, with a path
 *    from p to q reading w too (a path from (p,p,q) to (p,q,q) in the triple product).
 *
 * Approximations only ever add paths: assertions and look-arounds are taken as always passing,
 * a bounded repetition of more than one extra copy as unbounded, a back-reference as any text,
 * character sets as supersets under IGNORECASE and Unicode classes. One refinement keeps common
 * safe patterns: a state from which the end of the pattern is reached with no input and no
 * assertion ends every match that reaches it (a search stops at its first match), so it cannot
 * be where a failing match is pumped (`.*\.cache/.*` is fine; `.*a.*b` is not). Look-around
 * bodies are checked as patterns of their own.
 */
import { caseVariants, CharSet, MAX_CP } from './charset.js';
import { sccs } from './scc.js';
import { PyRegexError, type ClassItem, type Flags, type Node, type Parsed } from './pyregex-ast.js';

/** A pattern refused because it could backtrack without bound (not a syntax error). */
export class SlowRegexError extends PyRegexError {}

const ASCII_WORD = CharSet.of([[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]]);
const ASCII_DIGIT = CharSet.of([[0x30, 0x39]]);
const ASCII_SPACE = CharSet.of([[0x09, 0x0d], [0x20, 0x20]]);
const PY_SPACE_ASCII = CharSet.of([[0x09, 0x0d], [0x1c, 0x20]]);
const ASCII = CharSet.of([[0, 0x7f]]);
const NON_ASCII = CharSet.of([[0x80, MAX_CP]]);
const ASCII_LETTERS = CharSet.of([[0x41, 0x5a], [0x61, 0x7a]]);
/** Outside ASCII, letters that fold to an ASCII one (ſ, K, İ, ı). */
const FOLD_TO_ASCII = CharSet.chars(0x17f, 0x212a, 0x130, 0x131);

/** [lower, upper] bounds of what a class item matches (exact where cheap). */
function bounds(it: ClassItem, f: Flags): [CharSet, CharSet] {
  switch (it.t) {
    case 'char': {
      const exact = CharSet.chars(it.cp);
      if (!f.i) return [exact, exact];
      let up = CharSet.chars(...caseVariants(it.cp, f.a));
      if (!f.a && (it.cp >= 0x80 || ASCII_LETTERS.has(it.cp))) up = up.union(it.cp >= 0x80 ? NON_ASCII : FOLD_TO_ASCII);
      return [exact, up];
    }
    case 'range': {
      const exact = CharSet.of([[it.lo, it.hi]]);
      if (!f.i) return [exact, exact];
      return [exact, exact.union(ASCII_LETTERS).union(f.a ? CharSet.none : NON_ASCII)];
    }
    case 'dot': {
      const s = f.s ? CharSet.all : CharSet.chars(0x0a).complement();
      return [s, s];
    }
    case 'cat': {
      const exact = (s: CharSet): [CharSet, CharSet] => [s, s];
      switch (it.c) {
        case 'w':
          return f.a ? exact(ASCII_WORD) : [ASCII_WORD, ASCII.intersect(ASCII_WORD.complement()).complement()];
        case 'W':
          return f.a ? exact(ASCII_WORD.complement()) : [ASCII.intersect(ASCII_WORD.complement()), ASCII_WORD.complement()];
        case 'd':
          return f.a ? exact(ASCII_DIGIT) : [ASCII_DIGIT, ASCII_DIGIT.union(NON_ASCII)];
        case 'D':
          return f.a ? exact(ASCII_DIGIT.complement()) : [ASCII.intersect(ASCII_DIGIT.complement()), ASCII_DIGIT.complement()];
        case 's':
          return f.a ? exact(ASCII_SPACE) : [PY_SPACE_ASCII, PY_SPACE_ASCII.union(NON_ASCII)];
        case 'S':
          return f.a ? exact(ASCII_SPACE.complement()) : [ASCII.intersect(PY_SPACE_ASCII.complement()), PY_SPACE_ASCII.complement()];
      }
    }
  }
}

/** A superset of what a `set` node matches. */
function setOf(items: ClassItem[], negate: boolean, f: Flags): CharSet {
  let lower = CharSet.none;
  let upper = CharSet.none;
  for (const it of items) {
    const [lo, up] = bounds(it, f);
    lower = lower.union(lo);
    upper = upper.union(up);
  }
  // Negated: what the class does not match is at most the complement of what it surely matches.
  return negate ? lower.complement() : upper;
}

type NfaNode = { k: 'eps' | 'check' | 'accept'; out: number[] } | { k: 'char'; set: CharSet; to: number };

const STEP_BUDGET = 400_000;
const tooComplex = () => new SlowRegexError('too complex to prove that matching it takes linear time; simplify it');

class Nfa {
  readonly nodes: NfaNode[] = [];
  /** ε-edges that enter a loop's body, and that go back to its start after one iteration, by loop. */
  readonly entries = new Map<string, number>();
  readonly backs = new Map<string, number>();
  private loops = 0;
  /** Look-around bodies, checked as patterns of their own. */
  readonly subpatterns: Node[] = [];

  add(n: NfaNode): number {
    this.nodes.push(n);
    return this.nodes.length - 1;
  }

  eps(k: 'eps' | 'check' = 'eps'): number {
    return this.add({ k, out: [] });
  }

  link(from: number, to: number): void {
    (this.nodes[from] as { out: number[] }).out.push(to);
  }

  /** A fragment for `n`: [entry, exit]. */
  build(n: Node): [number, number] {
    switch (n.t) {
      case 'set': {
        const t = this.eps();
        return [this.add({ k: 'char', set: setOf(n.items, n.negate, n.f), to: t }), t];
      }
      case 'assert': {
        const s = this.eps('check');
        const t = this.eps();
        this.link(s, t);
        return [s, t];
      }
      case 'look': {
        this.subpatterns.push(n.body);
        const s = this.eps('check');
        const t = this.eps();
        this.link(s, t);
        return [s, t];
      }
      case 'backref': {
        // Any text: a loop over any character.
        const loop = this.eps();
        const t = this.eps();
        const back = this.eps();
        const c = this.add({ k: 'char', set: CharSet.all, to: back });
        const id = this.loops++;
        this.link(loop, c);
        this.entries.set(`${loop},${c}`, id);
        this.link(back, loop);
        this.backs.set(`${back},${loop}`, id);
        this.link(loop, t);
        return [loop, t];
      }
      case 'group':
        return this.build(n.body);
      case 'seq': {
        if (!n.items.length) {
          const s = this.eps();
          return [s, s];
        }
        const frags = n.items.map((x) => this.build(x));
        for (let i = 1; i < frags.length; i++) this.link(frags[i - 1]![1], frags[i]![0]);
        return [frags[0]![0], frags[frags.length - 1]![1]];
      }
      case 'alt': {
        const s = this.eps();
        const t = this.eps();
        for (const a of n.alts) {
          const [as, at] = this.build(a);
          this.link(s, as);
          this.link(at, t);
        }
        return [s, t];
      }
      case 'rep': {
        const s = this.eps();
        let cur = s;
        // Copies beyond two add no new way to match the same text twice.
        for (let i = 0; i < Math.min(n.min, 2); i++) {
          const [bs, bt] = this.build(n.body);
          this.link(cur, bs);
          cur = bt;
        }
        const t = this.eps();
        const extra = n.max - n.min;
        if (extra === 0) this.link(cur, t);
        else if (extra === 1) {
          const [bs, bt] = this.build(n.body);
          this.link(cur, bs);
          this.link(cur, t);
          this.link(bt, t);
        } else {
          const loop = this.eps();
          this.link(cur, loop);
          const [bs, bt] = this.build(n.body);
          const id = this.loops++;
          this.link(loop, bs);
          this.entries.set(`${loop},${bs}`, id);
          this.link(bt, loop);
          this.backs.set(`${bt},${loop}`, id);
          this.link(loop, t);
        }
        return [s, t];
      }
    }
  }
}

interface Edge {
  to: number;
  set: CharSet;
  /** Distinct ε-paths to this transition, up to 2. */
  ways: number;
}

/** The ε-free automaton: per state its transitions, and whether it ends a match unconditionally. */
function epsilonFree(nfa: Nfa, start: number): { states: number[]; edges: Map<number, Edge[]>; ends: Set<number> } {
  const states = [start, ...nfa.nodes.flatMap((n) => (n.k === 'char' ? [n.to] : []))];
  const edges = new Map<number, Edge[]>();
  const ends = new Set<number>();
  let steps = 0;
  for (const x of new Set(states)) {
    const byChar = new Map<number, number>();
    /** Loops whose body this ε-path entered: going round one of them again would be an empty iteration. */
    const entered = new Set<number>();
    const walk = (u: number, checked: boolean): void => {
      if (++steps > STEP_BUDGET) throw tooComplex();
      const node = nfa.nodes[u]!;
      if (node.k === 'char') {
        byChar.set(u, Math.min(2, (byChar.get(u) ?? 0) + 1));
        return;
      }
      if (node.k === 'accept') {
        if (!checked) ends.add(x);
        return;
      }
      for (const v of node.out) {
        // An iteration that read nothing ends the loop (Python and V8 both stop there).
        const back = nfa.backs.get(`${u},${v}`);
        if (back !== undefined && entered.has(back)) continue;
        const entry = nfa.entries.get(`${u},${v}`);
        const fresh = entry !== undefined && !entered.has(entry);
        if (fresh) entered.add(entry);
        walk(v, checked || node.k === 'check');
        if (fresh) entered.delete(entry);
      }
    };
    walk(x, false);
    edges.set(
      x,
      [...byChar].map(([c, ways]) => {
        const node = nfa.nodes[c] as { set: CharSet; to: number };
        return { to: node.to, set: node.set, ways };
      }),
    );
  }
  return { states: [...new Set(states)], edges, ends };
}

function checkAutomaton(root: Node): void {
  const nfa = new Nfa();
  const [s, t] = nfa.build(root);
  const accept = nfa.add({ k: 'accept', out: [] });
  nfa.link(t, accept);
  const { states, edges, ends } = epsilonFree(nfa, s);
  // States that end every match reaching them cannot pump a failing one.
  const live = states.filter((q) => !ends.has(q));
  const isLive = new Set(live);
  const out = (q: number) => (edges.get(q) ?? []).filter((e) => isLive.has(e.to));

  // Cycles of the automaton: every path that can be pumped stays within one strongly
  // connected component, which keeps the products below small.
  const single = sccs<number>(live, (q) => out(q).map((e) => e.to), String, STEP_BUDGET, tooComplex);
  const sccOf = (q: number) => single.get(String(q))!;
  const looping = live.filter((q) => out(q).some((e) => sccOf(e.to) === sccOf(q)));

  // Exponential: in the product automaton, a cycle through (q,q) that leaves the diagonal or
  // takes a transition reached two ways.
  type Pair = [number, number];
  const pairKey = ([a, b]: Pair) => `${a},${b}`;
  const pairNext = ([a, b]: Pair): Pair[] => {
    const res: Pair[] = [];
    const c = sccOf(a);
    for (const e of out(a)) if (sccOf(e.to) === c) for (const g of out(b)) if (sccOf(g.to) === c && e.set.meets(g.set)) res.push([e.to, g.to]);
    return res;
  };
  const comp = sccs<Pair>(looping.map((q) => [q, q]), pairNext, pairKey, STEP_BUDGET, tooComplex);
  const members = new Map<number, Pair[]>();
  for (const [k, c] of comp) {
    const [a, b] = k.split(',').map(Number) as Pair;
    members.set(c, [...(members.get(c) ?? []), [a, b]]);
  }
  for (const ps of members.values()) {
    const diagonal = ps.filter(([a, b]) => a === b);
    if (!diagonal.length) continue;
    const c = comp.get(pairKey(diagonal[0]!))!;
    const offDiagonal = ps.some(([a, b]) => a !== b);
    const twice = diagonal.some(([q]) => out(q).some((e) => e.ways > 1 && comp.get(pairKey([e.to, e.to])) === c));
    if (offDiagonal || twice) {
      throw new SlowRegexError('matching it can take time exponential in the length of the path (a repetition can match the same text in more than one way, e.g. "(a+)+" or "(a|a)*"); rewrite it so that it cannot');
    }
  }

  // Polynomial: p and q in two different cycles, and one text that goes round p's, from p to
  // q, and round q's: a path from (p,p,q) to (p,q,q) in the triple product. (Within one
  // component this is already exponential, found above.)
  type Triple = [number, number, number];
  let visited = 0;
  for (const p of looping) {
    for (const q of looping) {
      if (sccOf(p) === sccOf(q)) continue;
      const seen = new Set<string>();
      const todo: Triple[] = [[p, p, q]];
      while (todo.length) {
        const [a, b, c] = todo.pop()!;
        const k = `${a},${b},${c}`;
        if (seen.has(k)) continue;
        seen.add(k);
        if (++visited > STEP_BUDGET) throw tooComplex();
        if (a === p && b === q && c === q && seen.size > 1) {
          throw new SlowRegexError(
            'matching it can take time growing polynomially with the length of the path (two repetitions can match the same text, then fail, e.g. ".*a.*b" or "\\w+\\s?\\w+$"); rewrite it so that they cannot (a leading ".*" is never needed: filters search anywhere in the path)',
          );
        }
        for (const e of out(a)) {
          if (sccOf(e.to) !== sccOf(p)) continue;
          for (const g of out(b)) {
            const eg = e.set.intersect(g.set);
            if (eg.empty) continue;
            for (const h of out(c)) if (sccOf(h.to) === sccOf(q) && eg.meets(h.set)) todo.push([e.to, g.to, h.to]);
          }
        }
      }
    }
  }
  for (const sub of nfa.subpatterns) checkAutomaton(sub);
}

/** Whether the pattern can repeat anything more than once (else its automaton has no cycle). */
function repeats(n: Node): boolean {
  switch (n.t) {
    case 'rep':
      return n.max - n.min >= 2 || repeats(n.body);
    case 'backref':
      return true;
    case 'group':
    case 'look':
      return repeats(n.body);
    case 'seq':
      return n.items.some(repeats);
    case 'alt':
      return n.alts.some(repeats);
    default:
      return false;
  }
}

/** Throws a SlowRegexError when the parsed pattern could backtrack more than linearly. */
export function checkLinear(parsed: Parsed): void {
  // Without a repetition there is no cycle, and nothing to pump.
  if (repeats(parsed.root)) checkAutomaton(parsed.root);
}
