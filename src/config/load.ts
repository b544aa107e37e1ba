/**
 * Layered configuration: config/default.yaml, then each `-c` file in order, then flags.
 * Every layer is checked on its own, so an error names the key and the file that set it.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { AppError, ConfigError, describeErrno } from '../errors.js';
import { isLeaf, SCHEMA, type Leaf, type Node } from './schema.js';

/**
 * A hook as loaded: what to run (a string runs with /bin/sh -c; a list is an argv whose first
 * element, when it names a path, is resolved like every other path) and the directory it runs
 * in: that of the configuration file that set it.
 */
export interface Hook {
  run: string | string[];
  cwd: string;
}

export interface Config {
  source: {
    path: string | null;
    name: string | null;
    pick_policy: 'alphasort_last';
    queue: { path: string | null; check_mtime: boolean };
    extended_metadata: boolean;
    entry_cache: { path: string | null; commit_after: { queries: number; seconds: number } };
  };
  destination: {
    url: string;
    result: { print_to_stdout: boolean; append_to_file: string | null; append_to_lafs_dir: string | null };
    encoding: {
      xz: {
        enabled: boolean;
        options: { preset?: number; extreme?: boolean; check?: 'crc32' | 'crc64' | 'sha256' };
        min_size: number;
        path_filter: (string | [number, string])[];
        compressed_names: string[];
        min_saving: number | null;
        encoders: number | null;
      };
    };
  };
  http: {
    ca_certs_files: string[] | null;
    debug_requests: boolean;
    timeout: number;
    retry: { attempts: number; delay: number[] };
    interactive_retry: { attempts: number; delay: number[] };
  };
  filter: string[];
  operation: {
    queue_only: boolean;
    reuse_queue: boolean;
    disable_deduplication: boolean;
    hash_before_upload: boolean;
    try_resume: boolean;
    concurrency: number;
    timeouts: { updates: number[] };
    rate_limit: { bytes: string | number | null; objects: string | number | null };
  };
  logging: { level: 'error' | 'warn' | 'info' | 'debug' | 'noise'; format: 'text' | 'json'; file: string | null };
  hooks: { before_backup: Hook | null; after_backup: Hook | null; timeout: number };
}

export const DEFAULTS_FILE = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

type Tree = Record<string, unknown>;

/** A configuration file larger than this is refused (and /dev/zero is not read forever). */
const MAX_CONFIG_BYTES = 1 << 20;

function readBounded(file: string, max: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > max) throw new ConfigError(`${file}: a configuration file must be at most ${max} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Reads and parses one YAML file into a mapping; errors name the file (and line). */
export function readYamlFile(file: string): Tree {
  let text: string;
  try {
    text = readBounded(file, MAX_CONFIG_BYTES);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${file}: cannot read configuration: ${describeErrno(e)}`);
  }
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
    const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${file}${where}: invalid YAML: ${reason}`);
  }
  let data: unknown;
  try {
    // The yaml library refuses documents whose aliases expand beyond a limit (an alias bomb).
    data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    throw new ConfigError(`${file}: invalid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`${file}: the configuration must be a mapping of keys`);
  return data as Tree;
}

/** Checks one layer against the schema; `base` resolves its relative paths (null: as given). */
function checkLayer(layer: Tree, origin: string, base: string | null, node: Node = SCHEMA, prefix = ''): Tree {
  const out: Tree = {};
  for (const [k, v] of Object.entries(layer)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const spec = (node as Record<string, Node>)[k];
    if (!spec || !Object.hasOwn(node, k)) throw new ConfigError(`${origin}: unknown key '${key}'`);
    if (isLeaf(spec)) {
      if (!spec.ok(v)) throw new ConfigError(`${origin}: ${key}: expected ${spec.expect}, got ${show(v)}`);
      try {
        spec.validate?.(v, key);
        out[k] = spec.path && base !== null ? resolvePaths(v, spec.path, base, key) : v;
      } catch (e) {
        // The value's own error names the key; the layer it came from goes in front.
        if (e instanceof AppError) throw new ConfigError(`${origin}: ${e.message}`);
        throw e;
      }
    } else {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new ConfigError(`${origin}: ${key}: expected a mapping of keys, got ${show(v)}`);
      }
      out[k] = checkLayer(v as Tree, origin, base, spec, key);
    }
  }
  return out;
}

/**
 * The home directory for `~`. An empty or relative HOME (cron jobs, `env -i`, service
 * managers) would turn `~/x.log` into `/x.log` or a path relative to wherever we run: refused.
 */
function home(key: string): string {
  const dir = homedir();
  if (!isAbsolute(dir)) throw new ConfigError(`${key}: cannot expand ~: HOME is ${dir ? `not an absolute path (${JSON.stringify(dir)})` : 'empty'}; set HOME or give the path in full`);
  return dir;
}

/** One path: `~/x` is in the home directory; other relative paths are taken from `base`. */
function resolvePath(v: string, base: string, key: string): string {
  if (v === '~' || v.startsWith('~/')) return join(home(key), v.slice(1));
  return isAbsolute(v) ? v : resolve(base, v);
}

/**
 * Resolves the paths of a leaf set in a file whose directory is `base`. A hook (see Hook)
 * keeps its command; an argv's program is a path when it holds a `/` (or starts with `~/`),
 * else a name looked up in PATH as execvp does.
 */
function resolvePaths(v: unknown, kind: NonNullable<Leaf['path']>, base: string, key: string): unknown {
  if (v === null) return v;
  if (kind === 'hook') {
    if (typeof v === 'string') return { run: v, cwd: base } satisfies Hook;
    const [program, ...args] = v as string[];
    return { run: [program!.includes('/') ? resolvePath(program!, base, key) : program!, ...args], cwd: base } satisfies Hook;
  }
  if (typeof v === 'string') return resolvePath(v, base, key);
  if (Array.isArray(v)) return v.map((x) => resolvePath(x as string, base, key));
  return v;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Lays `layer` over `into`: sections merge key by key, a leaf's value (a list, a mapping) replaces the old one whole. */
function merge(into: Tree, layer: Tree, node: Node = SCHEMA): Tree {
  for (const [k, v] of Object.entries(layer)) {
    const spec = (node as Record<string, Node>)[k]!;
    const cur = into[k];
    if (!isLeaf(spec) && cur && typeof cur === 'object') into[k] = merge({ ...(cur as Tree) }, v as Tree, spec);
    else into[k] = v;
  }
  return into;
}

/** Turns `{"a.b.c": 1}` (flags) into `{a: {b: {c: 1}}}`. */
export function dotted(flags: Record<string, unknown>): Tree {
  const out: Tree = {};
  for (const [key, v] of Object.entries(flags)) {
    if (v === undefined) continue;
    const parts = key.split('.');
    let t = out;
    for (const p of parts.slice(0, -1)) t = (t[p] ??= {}) as Tree;
    t[parts[parts.length - 1]!] = v;
  }
  return out;
}

export interface LoadOptions {
  files?: string[];
  /** Values from command-line flags, by dotted key. */
  flags?: Record<string, unknown>;
  cwd?: string;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  let merged = checkLayer(readYamlFile(DEFAULTS_FILE), DEFAULTS_FILE, null);
  for (const f of opts.files ?? []) {
    const file = resolve(cwd, f);
    merged = merge(merged, checkLayer(readYamlFile(file), file, dirname(file)));
  }
  if (opts.flags) merged = merge(merged, checkLayer(dotted(opts.flags), 'command line', cwd));
  return normalize(merged);
}

const asList = (v: unknown): number[] => (Array.isArray(v) ? (v as number[]) : [v as number]);

function normalize(t: Tree): Config {
  const c = structuredClone(t) as unknown as Config;
  c.http.retry.delay = asList(c.http.retry.delay);
  c.http.interactive_retry.delay = asList(c.http.interactive_retry.delay);
  c.operation.timeouts.updates = asList(c.operation.timeouts.updates);
  const ca = c.http.ca_certs_files as unknown;
  c.http.ca_certs_files = ca === null ? null : Array.isArray(ca) ? (ca as string[]) : [ca as string];
  c.destination.encoding.xz.options ??= {};
  return c;
}

/** The value of a required key, or an error naming it and the command that needs it. */
export function required<T>(value: T | null | undefined, key: string, command: string): T {
  if (value === null || value === undefined) {
    throw new ConfigError(`${key} is required for '${command}' (set it in a -c file)`);
  }
  return value;
}

/** The configuration as YAML, for `dump-config`: keys as a file writes them (a hook is its command). */
export function dumpConfig(c: Config): string {
  const shown = structuredClone(c) as unknown as { hooks: Record<string, unknown> };
  for (const name of ['before_backup', 'after_backup'] as const) shown.hooks[name] = c.hooks[name]?.run ?? null;
  return YAML.stringify(shown, { lineWidth: 0 });
}
