/**
 * No module of src/ keeps mutable state of its own (issue 28, item 3): what a command works with
 * is opened for it by its session (commands/session.ts) and passed down, so that two runs in one
 * process (a server's, a test's) share nothing by accident. Parsed with the TypeScript compiler:
 * a top-level `let` or `var`, or a top-level Map, Set or array that the module adds to, is state.
 *
 * What is left is listed below, each with why it is not a run's state: a memo of a fact of the
 * process that never changes once known (a module loaded on first use, the kernel's capability
 * count), or a latch on a stream the process has only one of. The list may only shrink: an entry
 * that is no longer found fails too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

const ALLOWED: Record<string, string> = {
  'config/schema.ts: schema': 'memo: the schema built once from the defaults file',
  'meta/capability.ts: knownBits': "memo: the kernel's capability count, read once",
  'native.ts: addon': 'memo: the native addon, loaded on first use',
  'native.ts: loadError': 'memo: why the native addon could not be loaded',
  'tahoe/http.ts: http': 'memo: the HTTP library, loaded on first use',
  'tahoe/errors.ts: limitsText': "memo: the process's resource limits, read once",
  'config/series-name.ts: mm': 'memo: minimatch, loaded on first use',
  'core/xz.ts: lzmaLoaded': 'memo: the xz binding, loaded on first use',
  'core/scavenge.ts: gc': "memo: V8's scavenge function, reached once",
  'core/scavenge.ts: since': "counter: bytes since the last scavenge — the heap it paces is the process's, one per process",
  'commands/output.ts: failure': "latch: how the process's one stdout failed (it stays failed)",
  'commands/output.ts: guarded': "latch: the process's stdout and stderr have their error listeners",
};

const MUTATORS = ['add', 'set', 'push', 'delete', 'clear', 'unshift', 'splice'];

/** `file: name` of each top-level binding of src/ that holds mutable state. */
function moduleState(): string[] {
  const found: string[] = [];
  for (const f of readdirSync(SRC, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts') || f.startsWith('config/generated')) continue;
    const text = readFileSync(join(SRC, f), 'utf8');
    const file = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, false);
    for (const stmt of file.statements) {
      if (!ts.isVariableStatement(stmt)) continue;
      const list = stmt.declarationList;
      const isConst = (list.flags & ts.NodeFlags.Const) !== 0;
      for (const d of list.declarations) {
        if (!ts.isIdentifier(d.name)) continue;
        const name = d.name.text;
        const init = d.initializer;
        const collection =
          init !== undefined &&
          ((ts.isNewExpression(init) && ts.isIdentifier(init.expression) && ['Map', 'Set', 'WeakMap', 'WeakSet', 'Array'].includes(init.expression.text)) || ts.isArrayLiteralExpression(init));
        const mutated = collection && new RegExp(`\\b${name}\\.(${MUTATORS.join('|')})\\(`).test(text);
        if (!isConst || mutated) found.push(`${relative(SRC, join(SRC, f))}: ${name}`);
      }
    }
  }
  return found.sort();
}

describe('module-level state in src/', () => {
  it('no module keeps mutable state beyond the listed memos and latches (and each listed one still exists)', () => {
    const found = moduleState();
    expect(found.filter((k) => !(k in ALLOWED))).toEqual([]);
    expect(Object.keys(ALLOWED).filter((k) => !found.includes(k))).toEqual([]);
  });

  it('the flags the issue named are gone: no metaTrouble, no RunStop, no module that wires SIGINT/SIGTERM but the session and the re-exec in cli.ts', () => {
    const wiring: string[] = [];
    for (const f of readdirSync(SRC, { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      const text = readFileSync(join(SRC, f), 'utf8');
      expect(text, f).not.toMatch(/\bmetaTrouble\b|\bRunStop\b/);
      if (/process\.(on|once|addListener)\(\s*(['"]SIG(INT|TERM)['"]|sig\b)/.test(text)) wiring.push(f);
    }
    expect(wiring.sort()).toEqual(['cli.ts', 'commands/session.ts']);
  });
});
