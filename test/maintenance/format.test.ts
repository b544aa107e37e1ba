/** check's format strings, in the original tool's Python style. */
import { describe, expect, it } from 'vitest';
import { compileFormat } from '../../src/maintenance/format.js';

const unit = { path: ['sub', 'a.txt'], type: 'file', 'check-results': { summary: 'Not Healthy: 3 shares (enc 2-of-4)', results: { 'count-good-share-hosts': 3, healthy: false } } };

describe('format strings', () => {
  it('supports the original syntax', () => {
    expect(compileFormat('{0[path]}')({ 0: unit })).toBe('sub/a.txt');
    expect(compileFormat('{0[check-results][results][count-good-share-hosts]} hosts, healthy={0[check-results][results][healthy]}')({ 0: unit })).toBe('3 hosts, healthy=False');
    expect(compileFormat('{backup[name]}: {0[type]}')({ 0: unit, backup: { name: 'home' } })).toBe('home: file');
    expect(JSON.parse(compileFormat('{0}')({ 0: unit }))).toEqual(unit);
    expect(compileFormat('{{literal}} {0[missing][deeper]}|')({ 0: unit })).toBe('{literal} |');
    expect(compileFormat('{0[path]!s:>10}')({ 0: unit })).toBe('sub/a.txt');
  });

  it('refuses malformed formats with an error naming the option', () => {
    expect(() => compileFormat('{0[path]', '--format')).toThrow(/^--format: unclosed '\{'/);
    expect(() => compileFormat('a } b', '--format')).toThrow(/single '\}'/);
    expect(() => compileFormat('{0[path]x}', '--healthy-format')).toThrow(/^--healthy-format: bad field/);
  });
});
