/** Filter rules: the SPEC's examples, the original README's, directory slashes, Python habits. */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { compressionChoice, keptXzBefore, sampleBlocks, sampleOf, samplePays } from '../../src/core/compression.js';
import { included } from '../../src/core/rules.js';
import { compileNameRules, compileRules, compileSizeRules } from '../../src/scan/filters.js';
import { pyRegex } from '../../src/scan/pyregex.js';

/**
 * Simulates the walk's decisions over a list of paths (directories end with '/'): a path is
 * kept when it and every ancestor directory are included — excluded directories are never
 * entered, so nothing below one can be included again.
 */
function kept(rules: string[], paths: string[]): string[] {
  const compiled = compileRules(rules);
  return paths.filter((p) => {
    const parts = p.replace(/\/$/, '').split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) if (!included(compiled, `/${parts.slice(0, i).join('/')}/`)) return false;
    return included(compiled, p.startsWith('/') ? p : `/${p}`);
  });
}

const TREE = [
  '/proj/', '/proj/.git/', '/proj/.git/config', '/proj/.git/info/', '/proj/.git/info/exclude', '/proj/.git/objects/',
  '/proj/.git/objects/ab/', '/proj/.git/objects/ab/cdef', '/proj/.git/HEAD', '/proj/main.c',
  '/proj/.svn/', '/proj/.svn/entries', '/proj/SVN/', '/proj/.svnignore', '/proj/svnkit.jar',
  '/tmp/', '/tmp/x', '/home/', '/home/tmp/', '/home/tmp/y',
];

describe('filters', () => {
  it("the original README's example does NOT keep .git/config: /…/.git/ is excluded first", () => {
    const rules = ['+/\\.git/config$', '+/\\.git/info/', '-/\\.git/', '-/(?i)\\.?svn(/|ignore)$', '-^/tmp/'];
    expect(kept(rules, TREE)).toEqual(['/proj/', '/proj/main.c', '/proj/svnkit.jar', '/home/', '/home/tmp/', '/home/tmp/y']);
  });

  it('the form that works keeps .git/config and .git/info/, nothing else of .git', () => {
    const rules = ['+/\\.git/$', '+/\\.git/config$', '+/\\.git/info/', '-/\\.git/.', '-/(?i)\\.?svn(/|ignore)$', '-^/tmp/'];
    expect(kept(rules, TREE)).toEqual([
      '/proj/', '/proj/.git/', '/proj/.git/config', '/proj/.git/info/', '/proj/.git/info/exclude', '/proj/main.c',
      '/proj/svnkit.jar', '/home/', '/home/tmp/', '/home/tmp/y',
    ]);
  });

  it("(?i) applies to the whole pattern wherever it stands (Python 2), and '-^/tmp/' only at the top", () => {
    expect(kept(['-/(?i)\\.?svn(/|ignore)$'], ['/a/.SVN/', '/a/svn/', '/a/.svnignore', '/a/.SvnIgnore', '/a/svnx/'])).toEqual(['/a/svnx/']);
    expect(kept(['-^/tmp/'], ['/tmp/', '/tmp/a', '/x/tmp/', '/x/tmp/a'])).toEqual(['/x/tmp/', '/x/tmp/a']);
  });

  it('the first matching rule decides; no match means include; a search, not a full match', () => {
    const rules = compileRules(['+\\.log$', '-^/var/log/', '-cache']);
    expect(included(rules, '/var/log/syslog.log')).toBe(true);
    expect(included(rules, '/var/log/syslog')).toBe(false);
    expect(included(rules, '/home/u/.cache/')).toBe(false);
    expect(included(rules, '/home/u/notes')).toBe(true);
  });

  it('the original example config: only /var/log/security/ of /var/log, no /tmp, no Downloads', () => {
    const rules = ['+^/var/log/($|security/)', '-^/var/(tmp|cache|log|spool)/', '-^/home/\\w+/Downloads/', '-^/tmp/'];
    const paths = ['/var/', '/var/log/', '/var/log/security/', '/var/log/security/a', '/var/log/syslog', '/var/cache/', '/var/lib/', '/home/', '/home/bob/', '/home/bob/Downloads/', '/home/bob/Downloads/x.iso', '/home/bob/doc', '/tmp/'];
    expect(kept(rules, paths)).toEqual(['/var/', '/var/log/', '/var/log/security/', '/var/log/security/a', '/var/lib/', '/home/', '/home/bob/', '/home/bob/doc']);
  });

  it('directories are matched with a trailing slash, so a rule can tell a dir from a file', () => {
    const rules = compileRules(['-/build/$']);
    expect(included(rules, '/src/build/')).toBe(false);
    expect(included(rules, '/src/build')).toBe(true);
  });

  it('bad rules and bad regexes are configuration errors that name the rule', () => {
    expect(() => compileRules(['+ok', 'no-sign'])).toThrow(/^filter\[1\]: rule "no-sign" must start with '\+' \(include\) or '-' \(exclude\)$/);
    expect(() => compileRules(['-(unclosed'])).toThrow(/^filter\[0\]: rule "-\(unclosed" is not a valid regular expression: /);
    expect(() => compileRules(['+a[b'])).toThrow(/filter\[0\]/);
  });
});

describe('Python regex habits', () => {
  it('named groups, \\A, \\Z, Python $ before a final newline, verbose mode, ] first in a class', () => {
    expect(pyRegex('(?P<x>ab)(?P=x)').test('abab')).toBe(true);
    expect(pyRegex('\\Afoo').test('xfoo')).toBe(false);
    expect(pyRegex('foo\\Z').test('foo\n')).toBe(false);
    expect(pyRegex('foo$').test('foo\n')).toBe(true);
    expect(pyRegex('foo$').test('foo\nbar')).toBe(false);
    expect(pyRegex('(?m)^bar$').test('foo\nbar\nbaz')).toBe(true);
    expect(pyRegex('(?x) a b  # comment\n c').test('abc')).toBe(true);
    expect(pyRegex('[]a]').test(']')).toBe(true);
    expect(pyRegex('x(?s).y').test('x\ny')).toBe(true);
  });
});

describe('patterns that could backtrack without bound are refused when loaded', () => {
  const slow = [
    '(a+)+$', '(a|a)*$', '(a*)*$', '(?:ab|a(?:b))*$', '(x+x+)+y', '(.*,)*$', '^(\\w+\\s?)*$', '(?=(a+)+$)', '.*a.*b', '\\w+\\s?\\w+$', '\\d*5\\d*$', '(a+){10}$',
  ];
  const fine = [
    '/\\.git/$', '/\\.git/config$', '/\\.git/info/', '/\\.git/.', '/(?i)\\.?svn(/|ignore)$', '^/tmp/', '^/var/log/($|security/)', '^/var/(tmp|cache|log|spool)/',
    '^/home/\\w+/Downloads/', '\\.log$', '(\\d+\\.)+$', '.*\\.cache/.*', '^/home/[^/]+/\\.cache/', '/log\\.\\d{,3}$', '(?i)\\.(jpe?g|png)$', '\\bcore$', '[0-9a-f]{32}$',
  ];

  it.each(slow)('%s: refused, one line naming the rule', (re) => {
    expect(() => compileRules([`-${re}`])).toThrow(/^filter\[0\]: rule ".*" is refused: matching it can take time (exponential|growing polynomially)/);
  });

  it.each(fine)('%s: accepted', (re) => {
    expect(() => compileRules([`-${re}`])).not.toThrow();
  });

  it("the defaults of compressed_names and the README's examples pass; path_filter and compressed_names are checked the same way", async () => {
    const { parse } = await import('yaml');
    const { readFileSync } = await import('node:fs');
    const defaults = parse(readFileSync(new URL('../../config/default.yaml', import.meta.url), 'utf8')) as { destination: { encoding: { xz: { compressed_names: string[] } } } };
    expect(() => compileNameRules(defaults.destination.encoding.xz.compressed_names, 'compressed_names')).not.toThrow();
    expect(() => compileSizeRules([[100, '(a+)+$']])).toThrow(/^destination\.encoding\.xz\.path_filter\[0\]: rule "\(a\+\)\+\$" is refused/);
    expect(() => compileNameRules(['(a|a)*$'], 'destination.encoding.xz.compressed_names')).toThrow(/^destination\.encoding\.xz\.compressed_names\[0\]: rule .* is refused/);
  });

  it('a long pattern (300 alternatives) is judged, not refused as too complex to check', () => {
    const alternatives = Array.from({ length: 300 }, (_, i) => `name${i}`).join('|');
    expect(() => compileRules([`-^/(${alternatives})/.*\\.(tmp|bak)$`])).not.toThrow();
  });
});

describe('xz selection', () => {
  const policy = {
    enabled: true,
    minSize: 5120,
    rules: compileSizeRules(['-\\.(gz|xz)$', [500, '\\.(txt|log)$'], [2000, '+^/etc/'], '+\\.raw\\.jpg$']),
    compressedNames: compileNameRules(['(?i)\\.(jpe?g|png)$'], 'compressed_names'),
    minSaving: 0.1,
  };

  it('rules first, then compressed names, then min_size; the rest asks the contents', () => {
    expect(compressionChoice(policy, '/a.bin', 5120)).toBe('contents');
    expect(compressionChoice(policy, '/a.bin', 5119)).toBe('by-size');
    expect(compressionChoice(policy, '/a.txt', 500)).toBe('contents');
    expect(compressionChoice(policy, '/a.txt', 499)).toBe('by-size');
    expect(compressionChoice(policy, '/etc/passwd', 2000)).toBe('contents');
    expect(compressionChoice(policy, '/big.tar.gz', 10_000_000)).toBe('by-name');
    expect(compressionChoice(policy, '/photo.JPG', 10_000_000)).toBe('by-name');
    // A '+' rule of path_filter overrides the list of compressed names.
    expect(compressionChoice(policy, '/scan.raw.jpg', 10_000_000)).toBe('contents');
    expect(compressionChoice({ ...policy, enabled: false }, '/a.bin', 1 << 20)).toBe('off');
    expect(keptXzBefore(policy, '/photo.jpg', 10_000)).toBe(true);
    expect(keptXzBefore(policy, '/photo.jpg', 100)).toBe(false);
    expect(keptXzBefore(policy, '/a.gz', 10_000)).toBe(false);
    expect(() => compileSizeRules([[10, '(bad']])).toThrow(/path_filter\[0\]/);
    expect(() => compileNameRules(['(bad'], 'destination.encoding.xz.compressed_names')).toThrow(/compressed_names\[0\]/);
  });

  it('a sample decides: text pays, random bytes do not; the first and middle blocks of a large file', () => {
    const text = Buffer.from('2026-11-23 05:00:00 INFO request served in 12 ms\n'.repeat(4000));
    const random = randomBytes(300_000);
    expect(samplePays(sampleOf(text), 0.1)).toBe(true);
    expect(samplePays(sampleOf(random), 0.1)).toBe(false);
    // Every block must shrink: a text header over random data is stored raw, and so is the reverse.
    const textThenRandom = Buffer.concat([text.subarray(0, 150_000), random.subarray(0, 150_000)]);
    const randomThenText = Buffer.concat([random.subarray(0, 150_000), text.subarray(0, 150_000)]);
    expect(samplePays(sampleOf(textThenRandom), 0.1)).toBe(false);
    expect(samplePays(sampleOf(randomThenText), 0.1)).toBe(false);
    expect(samplePays(sampleOf(text), 1)).toBe(false);
    expect(samplePays(sampleOf(text), 0.5)).toBe(true);
    expect(samplePays(sampleOf(random), null)).toBe(true);
    expect(sampleBlocks(100)).toEqual([[0, 100]]);
    expect(sampleBlocks(10_000_000)).toEqual([
      [0, 32768],
      [4997120, 32768],
    ]);
    expect(samplePays([Buffer.alloc(0)], 0)).toBe(false);
  });
});
