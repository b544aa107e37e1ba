/**
 * The modules of src/ import each other without a cycle — type imports, re-exports and
 * dynamic imports included: each stage is below the reader that asks it, the events and their
 * folds below the stages. (A cycle is how one module ends up reaching into another's state:
 * phase 2's in-flight maps were one.) `graph` and `cycles` take any directory of src/.
 *
 * And every import points down (README, "How the stages fit"): each directory or top-level file
 * of src/ is in one layer, each layer has a rank, and a module imports only from its own layer or
 * from a layer of a lower rank — never sideways to another layer of its rank, never up.
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

/**
 * The layers, by the directories and top-level files of src/ (a directory by its name, a file
 * by its name with `.ts`). Shared pieces go in the lowest layer that every user sits above.
 */
const LAYERS: Record<string, string[]> = {
  // Imports nothing of the project: the error types, the version, write-fully, pid checks, .d.ts.
  base: ['errors.ts', 'version.ts', 'fsutil.ts', 'pids.ts', 'types'],
  // The shared pieces (a child, its metadata, path text, rules, redaction, the pool, xz, rate
  // limits, locks), the log (which opens its file with core/own-file; core/result-file logs)
  // and the addon loader.
  core: ['core', 'log.ts', 'native.ts'],
  tahoe: ['tahoe'],
  meta: ['meta'],
  scan: ['scan'],
  cache: ['cache'],
  // The configuration validates every lower piece's keys and maps them to their plain options.
  config: ['config'],
  hooks: ['hooks.ts'],
  progress: ['progress.ts'],
  grid: ['grid'],
  backup: ['backup'],
  browse: ['browse'],
  restore: ['restore'],
  export: ['export'],
  maintenance: ['maintenance'],
  serve: ['serve'],
  commands: ['commands'],
  main: ['main.ts'],
  cli: ['cli.ts'],
  demo: ['demo.ts'],
};

/** Ranks, lowest first. Layers of one rank import nothing of each other. */
const RANKS: string[][] = [
  ['base'],
  ['core'],
  ['tahoe', 'meta', 'scan', 'cache'],
  ['config'],
  ['hooks', 'progress', 'grid'],
  ['backup', 'browse'],
  ['restore'],
  ['export', 'maintenance'],
  ['serve'],
  ['commands'],
  ['main'],
  ['cli', 'demo'],
];

/** Deliberate exceptions, as 'from → to' module paths: none. */
const EXCEPTIONS: string[] = [];

const layerOfTop = new Map(Object.entries(LAYERS).flatMap(([layer, tops]) => tops.map((t) => [t, layer] as const)));
const rankOf = new Map(RANKS.flatMap((layers, rank) => layers.map((l) => [l, rank] as const)));

/** The layer a module (path relative to src/) is in, undefined when none is named for it. */
function layerOf(module: string): string | undefined {
  return layerOfTop.get(module.split('/')[0]!);
}

/** The imports that do not point down: to another layer of the same or a higher rank, or from or to a module in no layer. */
function upward(g: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [from, deps] of g) {
    for (const to of deps) {
      const [a, b] = [layerOf(from), layerOf(to)];
      if (a !== undefined && a === b) continue;
      const [ra, rb] = [a === undefined ? undefined : rankOf.get(a), b === undefined ? undefined : rankOf.get(b)];
      if (ra !== undefined && rb !== undefined && rb < ra) continue;
      if (!EXCEPTIONS.includes(`${from} → ${to}`)) found.push(`${from} (${a ?? 'no layer'}) → ${to} (${b ?? 'no layer'})`);
    }
  }
  return found.sort();
}

describe('imports', () => {
  it('src/ has no import cycle, type imports included', () => {
    const g = graph(SRC);
    expect(g.size).toBeGreaterThan(150);
    expect(cycles(g).map((c) => c.join(' → '))).toEqual([]);
  });

  it('every import of src/ points to its own layer or a lower one, type imports included', () => {
    const g = graph(SRC);
    // Every module is in a layer, every layer has a rank (a new directory must be placed).
    expect([...g.keys()].filter((m) => layerOf(m) === undefined)).toEqual([]);
    expect(Object.keys(LAYERS).filter((l) => !rankOf.has(l))).toEqual([]);
    expect(upward(g)).toEqual([]);
  });

  it('the layer check finds an import that points up or sideways', () => {
    const g = new Map([
      ['core/child.ts', ['tahoe/types.ts', 'errors.ts']],
      ['log.ts', ['core/own-file.ts', 'tahoe/caps.ts']],
      ['config/schema.ts', ['backup/ratelimit.ts', 'scan/filters.ts']],
      ['scan/select.ts', ['config/load.ts', 'cache/db.ts']],
      ['restore/fetch.ts', ['export/unxz.ts', 'browse/tree.ts']],
      ['wild.ts', ['core/pool.ts']],
    ]);
    expect(upward(g)).toEqual([
      'config/schema.ts (config) → backup/ratelimit.ts (backup)',
      'core/child.ts (core) → tahoe/types.ts (tahoe)',
      'log.ts (core) → tahoe/caps.ts (tahoe)',
      'restore/fetch.ts (restore) → export/unxz.ts (export)',
      'scan/select.ts (scan) → cache/db.ts (cache)',
      'scan/select.ts (scan) → config/load.ts (config)',
      'wild.ts (no layer) → core/pool.ts (core)',
    ]);
  });

  it('src/backup has no import cycle, type imports included', () => {
    const g = graph(join(SRC, 'backup'));
    expect(g.size).toBeGreaterThan(20);
    expect([...g.keys()]).toContain('backup/file-stage.ts');
    expect(cycles(g).map((c) => c.join(' → '))).toEqual([]);
  });

  it("native/: xattr.c, at.c and scan.c call nothing of each other's; addon.c registers them, util.c has what they share", () => {
    const NATIVE = resolve(SRC, '../native');
    const text = (f: string) => readFileSync(join(NATIVE, f), 'utf8');
    /** The functions a C file defines (a definition starts a line: a return type, the name, its parameters, `{`). */
    const defined = (f: string) => [...text(f).matchAll(/^(?:static\s+)?[\w ]+?[\s*]+(\w+)\([^;{]*\)\s*\{/gm)].map((m) => m[1]!);
    const calls = (f: string, names: string[]) => names.filter((n) => new RegExp(`\\b${n}\\s*\\(`).test(text(f)));
    const parts = ['xattr.c', 'at.c', 'scan.c'];
    expect(defined('xattr.c')).toContain('xattr_init');
    expect(defined('at.c')).toContain('at_init');
    expect(defined('scan.c')).toContain('scan_init');
    expect(defined('util.c')).toContain('throw_errno');
    for (const f of parts) for (const g of parts) if (f !== g) expect(calls(f, defined(g)), `${f} calls into ${g}`).toEqual([]);
    expect(calls('addon.c', parts.flatMap(defined)).sort()).toEqual(['at_init', 'scan_init', 'xattr_init']);
    expect(JSON.parse(readFileSync(join(NATIVE, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')).targets[0].sources.sort()).toEqual(['addon.c', 'at.c', 'scan.c', 'util.c', 'xattr.c']);
  });

  it('the finder finds a cycle when there is one', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual([['a', 'b', 'c', 'a']]);
  });
});
