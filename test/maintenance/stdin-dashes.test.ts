/** yargs drops a lone `-` from positional arguments: commands count them on the command line. */
import { describe, expect, it } from 'vitest';
import { stdinDashes } from '../../src/commands/cap-input.js';

describe('stdinDashes', () => {
  it('a lone - is told from an option value on the command line', () => {
    expect(stdinDashes([], ['check', '-'])).toBe(1);
    expect(stdinDashes(['e'], ['cleanup', '-e', '-'])).toBe(0);
    expect(stdinDashes(['e'], ['cleanup', '-ne', '-', '-'])).toBe(1);
    expect(stdinDashes(['f', 'format'], ['-c', '-', 'check', '--format', '-', '-n', '-'])).toBe(1);
    expect(stdinDashes([], ['check', '--', '-'])).toBe(1);
  });
});
