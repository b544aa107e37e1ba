/**
 * Filters mean what Python's `re` means: every construct of Python's syntax, run through
 * pyRegex and through Python 3 itself (python3 on the machine is the oracle), on the same
 * paths. A pattern Python refuses is refused; one Python accepts matches the same paths, or is
 * refused by name (the few constructs with no JavaScript form, listed in UNSUPPORTED).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pyRegex, PyRegexError } from '../../src/scan/pyregex.js';
import { SlowRegexError } from '../../src/scan/regex-linear.js';

const PATTERNS = [
  // quantifiers, and braces that are not quantifiers
  'a{,3}b', '^/a{,2}$', 'a{2,}', 'a{2}', 'a{,}', '/a{}', 'a{', 'a{x}', 'a{1,2', 'a{ 1}', 'a{3,2}', 'a*?b', 'a+?', 'a??b', 'a{1,3}?b', '(ab){2}', 'x{0}y',
  '*a', 'a**', '{3}', '^*', '\\b+', 'a{2}{3}', '(?#c)*', 'a(?#c)*', '(?=a)*a',
  // anchors
  '^/a', 'b$', 'b\\Z', '\\A/b', '(?m)^b$', '(?m)b$', 'b$\\n', '$', '^$',
  // groups and references
  '(?P<n>a)(?P=n)', '(a)\\1', '(a)(b)\\2', '\\1(a)', '(a\\1)', '(?P<n>a)(?P=m)', '(?P<1n>a)', '(?P<n>a)(?P<n>b)', '(?#comment)a', '(?:a|b)c', '(?=a)a', '(?!b)a', '(?<=/)a', '(?<!/)a', '(?<=a|bc)d', '(?<=a|b)c', '(?<n>a)', '(?P>n)', '(a', 'a)', '(?', '(?z)',
  // flags, global and scoped
  '(?i)ABC', '(?i)[a-c]', '(?i)s', '(?i)k', '(?i)i', '(?i)[^a]', '(?i)É', '(?s).', '.', '(?x) a b # c', '(?x)a\\ b', '(?x)[ ]', '(?x)a {2}',
  '(?i:a)B', '(?i)(?-i:a)b', '(?a)\\w', '(?a)\\d', '(?a)\\s', '(?u)\\w', '(?ai)k', '(?s:.)', '(?m:^b)', '(?x:a b)c', '(?i:[a-c])', '(?-i:a)', '(?i-i:a)', '(?L)a', '(?au)a', '(?a-u:a)',
  // escapes
  '\\d', '\\D', '\\w', '\\W', '\\s', '\\S', '\\bb', 'a\\B', '\\x41', '\\x4', '\\u0041', '\\u004', '\\U00000041', '\\U00110000', '\\101', '\\0', '\\07', '\\08', '\\8', '\\t', '\\n', '\\a', '\\e', '\\z', '\\-', '\\/', '\\ ', '\\é', '\\',
  // classes
  '[]a]', '[^]a]', '[a-]', '[-a]', '[\\d-]', '[\\w]', '[\\W]', '[\\s\\S]', '[^\\W\\d]', '[\\b]', '[\\x41-\\x43]', '[z-a]', '[\\d-z]', '[a', '[[a]', '[\\]]', '[\\101]', '[\\8]', '[.]', '[a-c-e]', '[\\A]', '[--a]', '[&&a]',
  // Unicode
  '\\d', '^\\w+$', '\\s', '^.$', '^/.$', '^/.\\Z', '^/..$', '[^\\s]', '\\bé', 'é\\b', '[\\u00e0-\\u00ff]',
];

/** Constructs Python accepts that have no faithful JavaScript form: refused, each by name. */
const UNSUPPORTED = [/\\N\{/, /possessive/, /atomic/, /conditional/, /look-behind is not supported/];

const SUBJECTS = [
  '/a', '/aa', '/aaa', '/aaaa', '/ab', '/aab', '/aaab', '/b', '/ab\n', '/ab\n\n', '/a\nb', '/b\na', '/ABC', '/abc', '/aBc', '/A', '/k', '/K', '/\u212a', '/s', '/S', '/\u017f',
  '/i', '/I', '/\u0130', '/\u0131', '/é', '/É', '/ß', '/_', '/٣', '/3', '/x', '/xy', '/y', '/ ', '/\t', '/\x1c', '/\xa0', '/\u2028', '/\ufeff', '/\r', '/😀', '/{', '/a{', '/a{}', '/a{x}', '/a{ 1}',
  '/a{1,2', '/abab', '/aba', '/bc', '/cd', '/bcd', '/ad', '/d', '/]', '/-', '/\b', '/\x07', '/\0', '/\x00' + '8', '/\x078', '/.', '/[', '/[a]', '/&', '/e', '/\\', '/ab c', '/a b', '/a  ', '/ac', '/Ac',
  '', '\n', '/aaaab', '/c', '/e-', '/à', '/ÿ', '/\u00e0b',
];

interface Verdict {
  error?: string;
  matches?: boolean[];
}

function python(patterns: string[], subjects: string[]): Verdict[] {
  const program = `
import json, re, sys, warnings
warnings.simplefilter('ignore')
data = json.load(sys.stdin)
out = []
for p in data['patterns']:
    try:
        r = re.compile(p)
    except Exception as e:
        out.append({'error': str(e)})
        continue
    out.append({'matches': [r.search(s) is not None for s in data['subjects']]})
print(json.dumps(out))
`;
  return JSON.parse(execFileSync('python3', ['-c', program], { input: JSON.stringify({ patterns, subjects }) }).toString()) as Verdict[];
}

function ours(pattern: string): RegExp | Error {
  try {
    return pyRegex(pattern);
  } catch (e) {
    if (e instanceof PyRegexError) return e;
    throw e;
  }
}

describe("filters mean what Python's re means (python3 as the oracle)", () => {
  const patterns = [...new Set(PATTERNS)];
  const verdicts = python(patterns, SUBJECTS);

  it.each(patterns.map((p, i) => [p, verdicts[i]!] as const))('%j', (pattern, py) => {
    const js = ours(pattern);
    if (py.error !== undefined) {
      expect(js, `Python refuses it (${py.error})`).toBeInstanceOf(PyRegexError);
      return;
    }
    if (js instanceof Error) {
      if (js instanceof SlowRegexError) return;
      expect(UNSUPPORTED.some((u) => u.test(js.message)), `refused, but Python accepts it: ${js.message}`).toBe(true);
      return;
    }
    const got = SUBJECTS.map((s) => js.test(s));
    const differ = SUBJECTS.filter((_, i) => got[i] !== py.matches![i]).map((s) => `${JSON.stringify(s)}: python ${!got[SUBJECTS.indexOf(s)]}`);
    expect(differ, `${js.source} /${js.flags}`).toEqual([]);
  });

  it('a global flag group anywhere applies to the whole pattern (as in Python 2; Python 3.11 wants it first)', () => {
    expect(pyRegex('-/\\.?svn(?i)(/|ignore)$').test('/x/-/SVNignore')).toBe(true);
    expect(pyRegex('a(?x) b').test('ab')).toBe(true);
  });

  it('the constructs with no JavaScript form are refused by name', () => {
    for (const [p, re] of [
      ['\\N{EM DASH}', /\\N\{\.\.\.\}/],
      ['a*+', /possessive/],
      ['(?>a)', /atomic/],
      ['(a)?(?(1)b|c)', /conditional/],
      ['(a)(?<=\\1)', /look-behind/],
    ] as const) {
      expect(() => pyRegex(p)).toThrow(re);
    }
  });
});
