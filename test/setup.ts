/**
 * Every test file runs with logging at the noise level (the most verbose), and every line any
 * in-process code logs is audited before the scrubber sees it: a line that contains a cap
 * fails the file. The scrubber is a last line of defence, not the mechanism.
 */
import { afterAll, expect } from 'vitest';
import { configureLogging } from '../src/log.js';

export const rawLogLines: string[] = [];
const leaks: string[] = [];
let paused = false;

/** For the one test that logs a cap on purpose, to prove the scrubber catches it. */
export function pauseAudit(p: boolean): void {
  paused = p;
}

configureLogging({
  level: 'noise',
  sink: () => {},
  audit: (raw) => {
    if (paused) return;
    rawLogLines.push(raw);
    if (rawLogLines.length > 10_000) rawLogLines.shift();
    if (/URI:[A-Z0-9-]+:/.test(raw)) leaks.push(raw);
  },
});

afterAll(() => {
  expect(leaks, 'log lines that contained a cap before scrubbing').toEqual([]);
});
