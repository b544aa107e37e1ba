/**
 * The backup's modules import each other without a cycle — type imports, re-exports and
 * dynamic imports included: each stage is below the reader that asks it, the events and their
 * folds below the stages. (A cycle is how one module ends up reaching into another's state:
 * phase 2's in-flight maps were one.) `graph` and `cycles` take any directory of src/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../../src');

/** Every module of `dir` (recursively) and the modules of `dir` it imports, by path relative to src/. */
function graph(dir: string): Map<string, string[]> {
  const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
  const inside = new Set(files);
  const g = new Map<string, string[]>();
  const spec = /(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(spec)) {
      const s = m[1] ?? m[2] ?? m[3]!;
      if (!s.startsWith('.')) continue;
      const target = resolve(dirname(f), s.replace(/\.js$/, '.ts'));
      if (inside.has(target)) deps.push(relative(SRC, target));
    }
    g.set(relative(SRC, f), deps);
  }
  return g;
}

/** The cycles found by a depth-first walk (each as the path that closes it). */
function cycles(g: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...g.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

describe('imports', () => {
  it('src/backup has no import cycle, type imports included', () => {
    const g = graph(join(SRC, 'backup'));
    expect(g.size).toBeGreaterThan(20);
    expect([...g.keys()]).toContain('backup/file-stage.ts');
    expect(cycles(g).map((c) => c.join(' → '))).toEqual([]);
  });

  it('the finder finds a cycle when there is one', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual([['a', 'b', 'c', 'a']]);
  });
});
