/** `backup` phase-1 behaviour as a user runs it: queue-only, glob sources, flag conflicts, bad rules. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatLine } from '../../src/scan/queue-codec.js';
import { readQueue } from '../../src/scan/queue-file.js';
import { runCli, withoutSummary } from '../support/cli.js';
import { makeTree, tempDir } from '../support/tree.js';

function project(extra = '') {
  const dir = tempDir();
  makeTree(join(dir, 'snapshots', 'backup.2026-01-01'), { old: 'o' });
  makeTree(join(dir, 'snapshots', 'backup.2026-02-01'), { 'new file.txt': 'n', sub: { 'ünï': 'u', '.git': { config: 'c', HEAD: 'h' } } });
  writeFileSync(join(dir, 'my.yaml'), `source:\n  path: snapshots/backup.*\n  queue: {path: queue.txt}\n  entry_cache: {path: cache.db}\n${extra}`);
  return dir;
}

describe('backup --queue-only', () => {
  it('writes a queue a person can read, for the last glob match, which reads back unchanged', async () => {
    const dir = project(`filter: ['+/\\.git/$', '+/\\.git/config$', '-/\\.git/.']\n`);
    const r = await runCli(['-c', join(dir, 'my.yaml'), 'backup', '--queue-only']);
    expect(withoutSummary(r.stderr)).toBe('');
    expect(r.code).toBe(0);
    const text = readFileSync(join(dir, 'queue.txt'), 'utf8');
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.map((l) => l.replace(/ \d+:\d+:\d*$/, ''))).toEqual(['new file.txt', 'sub/.git/config', 'sub/.git', 'sub/ünï', 'sub', '']);
    expect(text).toContain(`# source: ${join(dir, 'snapshots', 'backup.2026-02-01')}`);
    const again: string[] = [];
    for await (const { entry } of readQueue(join(dir, 'queue.txt'))) again.push(formatLine(entry));
    expect(again).toEqual(lines);
  });

  it('--queue-only PATH writes there', async () => {
    const dir = project();
    mkdirSync(join(dir, 'elsewhere'));
    const r = await runCli(['-c', join(dir, 'my.yaml'), 'backup', '--queue-only', join(dir, 'elsewhere', 'q')]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'elsewhere', 'q'), 'utf8')).toMatch(/^new file\.txt /m);
  });

  it('refuses --reuse-queue with -f, in one line, exit 2', async () => {
    const dir = project();
    const r = await runCli(['-c', join(dir, 'my.yaml'), 'backup', '--reuse-queue', '-f']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/mutually exclusive|cannot be used together/);
  });

  it('a glob that matches nothing, a bad rule, a bad regex: one line naming the culprit', async () => {
    const cases: [string, number, RegExp][] = [
      ['source: {path: /nonexistent/backup.*}', 1, /source\.path: no directory matches "\/nonexistent\/backup\.\*"/],
      ["filter: ['keep-me']", 2, /filter\[0\]: rule "keep-me" must start with '\+'/],
      ["filter: ['-(?P<x']", 2, /filter\[0\]: rule "-\(\?P<x" is not a valid regular expression/],
    ];
    for (const [yaml, code, re] of cases) {
      const dir = project();
      writeFileSync(join(dir, 'extra.yaml'), yaml);
      const r = await runCli(['-c', join(dir, 'my.yaml'), '-c', join(dir, 'extra.yaml'), 'backup', '--queue-only']);
      expect(r.code, yaml).toBe(code);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });
});
