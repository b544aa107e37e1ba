/**
 * Layered configuration: config/default.yaml, then each `-c` file in order, then flags.
 * Every layer is checked on its own, so an error names the key and the file that set it.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { AppError, ConfigError, describeErrno } from '../errors.js';
import { compileExclude } from '../scan/excludes.js';
import { validate as compiled } from './generated/validate.js';
import { stateDir } from './locate.js';
import { checkBeyond, childOf, configSchema, expected, isLeaf, type PathKind, type SchemaNode } from './schema.js';

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
  exclude: string[];
  exclude_files: string[];
  exclude_if_present: string[];
  exclude_caches: boolean;
  one_file_system: boolean;
  /** The patterns read from `exclude_files`, in order (not a key: dump-config leaves it out). */
  excludeFromFiles: string[];
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

/** What the validator compiled from config/schema.json reports (ajv's error objects, the parts read here). */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}
const validate = compiled as unknown as ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

export const DEFAULTS_FILE = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

type Tree = Record<string, unknown>;

/** A configuration file larger than this is refused (and /dev/zero is not read forever). */
const MAX_CONFIG_BYTES = 1 << 20;

/**
 * Opened without blocking (a FIFO put at the path would otherwise hold the run forever, before
 * any signal handler or deadline exists) and read only when it is a regular file or a device.
 */
function readBounded(file: string, max: number): string {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !st.isCharacterDevice()) throw new ConfigError(`${file}: not a regular file (${st.isFIFO() ? 'a FIFO or pipe' : st.isDirectory() ? 'a directory' : 'a socket or device'}); give a file`);
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

/** Where a layer came from, for the one line an error is: a file, or 'command line', or a variable. */
function fail(origin: string, message: string): never {
  throw new ConfigError(`${origin}: ${message}`);
}

/** The value at a JSON pointer's path (for the message of a value the schema refused). */
function valueAt(layer: Tree, parts: string[]): unknown {
  let v: unknown = layer;
  for (const p of parts) v = v !== null && typeof v === 'object' ? (v as Tree)[p] : undefined;
  return v;
}

/** The first problem ajv found in `layer`, as the one line the user reads: the key, what it expects, what it got. */
function schemaError(layer: Tree, origin: string, err: SchemaError): never {
  const parts = err.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: SchemaNode = configSchema();
  const path: string[] = [];
  for (const part of parts) {
    const next = childOf(node, part);
    if (!next) break;
    node = next;
    path.push(part);
    // Within a key (an item of a list, an option of a mapping), the key is what is named.
    if (isLeaf(node)) break;
  }
  const key = path.join('.');
  if (!isLeaf(node) && err.keyword === 'additionalProperties') {
    fail(origin, `unknown key '${key ? `${key}.` : ''}${(err.params as { additionalProperty: string }).additionalProperty}'`);
  }
  fail(origin, `${key}: expected ${expected(node)}, got ${show(valueAt(layer, path))}`);
}

/**
 * Checks one layer against the schema (the validator compiled from config/schema.json), then
 * each key's check beyond it (`x-check`), and resolves its relative paths against `base`
 * (null: as given). Errors name the key and `origin`.
 */
function checkLayer(layer: Tree, origin: string, base: string | null): Tree {
  if (!validate(layer)) schemaError(layer, origin, validate.errors![0]!);
  const walk = (t: Tree, node: SchemaNode, prefix: string): Tree => {
    const out: Tree = {};
    for (const [k, v] of Object.entries(t)) {
      const key = prefix ? `${prefix}.${k}` : k;
      const spec = childOf(node, k)!;
      if (!isLeaf(spec)) {
        out[k] = walk(v as Tree, spec, key);
        continue;
      }
      try {
        checkBeyond(spec, v, key);
        const kind = spec['x-path'];
        out[k] = kind && base !== null ? resolvePaths(v, kind, base, key) : v;
      } catch (e) {
        // The value's own error names the key; the layer it came from goes in front.
        if (e instanceof AppError) fail(origin, e.message);
        throw e;
      }
    }
    return out;
  };
  return walk(layer, configSchema(), '');
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
function resolvePaths(v: unknown, kind: PathKind, base: string, key: string): unknown {
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
function merge(into: Tree, layer: Tree, node: SchemaNode = configSchema()): Tree {
  for (const [k, v] of Object.entries(layer)) {
    const spec = childOf(node, k)!;
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
  /** Layers between the files and the flags, each with its origin for errors (LAFS_BACKUP_GATEWAY). */
  layers?: { origin: string; values: Record<string, unknown> }[];
  /** Values from command-line flags, by dotted key. */
  flags?: Record<string, unknown>;
  /** List keys the command line adds to rather than replaces (--exclude, --exclude-file, --exclude-if-present). */
  append?: Partial<Record<'exclude' | 'exclude_files' | 'exclude_if_present', string[]>>;
  cwd?: string;
  /** For the state directory's default (tests give their own). */
  env?: Record<string, string | undefined>;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  let merged = checkLayer(readYamlFile(DEFAULTS_FILE), DEFAULTS_FILE, null);
  for (const f of opts.files ?? []) {
    const file = resolve(cwd, f);
    merged = merge(merged, checkLayer(readYamlFile(file), file, dirname(file)));
  }
  for (const l of opts.layers ?? []) merged = merge(merged, checkLayer(dotted(l.values), l.origin, cwd));
  // Lists the command line adds to: the new items are checked (and their paths resolved) as its own.
  const more = Object.fromEntries(Object.entries(opts.append ?? {}).filter(([, v]) => v?.length));
  if (Object.keys(more).length) {
    const added = checkLayer(more, 'command line', cwd);
    for (const key of Object.keys(added)) added[key] = [...(merged[key] as unknown[]), ...(added[key] as unknown[])];
    merged = merge(merged, added);
  }
  if (opts.flags) merged = merge(merged, checkLayer(dotted(opts.flags), 'command line', cwd));
  return normalize(merged, opts.env ?? process.env);
}

const asList = (v: unknown): number[] => (Array.isArray(v) ? (v as number[]) : [v as number]);

/** Reads the patterns of the exclude files (each at most 1 MiB); each is checked, naming its file and line. */
function readExcludeFiles(files: string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readBounded(file, MAX_CONFIG_BYTES);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(`exclude_files: ${e.message}`);
      throw new ConfigError(`exclude_files: cannot read ${file}: ${describeErrno(e)}`);
    }
    // A byte-order mark (Notepad's UTF-8) is not part of the first pattern; restic leaves it out too.
    text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      compileExclude(line, `${file}:${i + 1}`);
      out.push(line);
    });
  }
  return out;
}

function normalize(t: Tree, env: Record<string, string | undefined>): Config {
  const c = structuredClone(t) as unknown as Config;
  c.http.retry.delay = asList(c.http.retry.delay);
  c.http.interactive_retry.delay = asList(c.http.interactive_retry.delay);
  c.operation.timeouts.updates = asList(c.operation.timeouts.updates);
  const ca = c.http.ca_certs_files as unknown;
  c.http.ca_certs_files = ca === null ? null : Array.isArray(ca) ? (ca as string[]) : [ca as string];
  c.destination.encoding.xz.options ??= {};
  // The queue and the cache default to the state directory (locate.ts), for every command alike.
  const state = stateDir(env);
  if (state) {
    c.source.queue.path ??= join(state, 'queue.txt');
    c.source.entry_cache.path ??= join(state, 'cache.db');
  }
  c.excludeFromFiles = readExcludeFiles(c.exclude_files);
  return c;
}

/** The value of a required key, or an error naming it and the command that needs it. */
export function required<T>(value: T | null | undefined, key: string, command: string): T {
  if (value === null || value === undefined) {
    throw new ConfigError(`${key} is required for '${command}' (set it in a configuration file${key === 'source.path' ? `, or give it: lafs-backup ${command} PATH` : ''})`);
  }
  return value;
}

/** The configuration as YAML, for `dump-config`: keys as a file writes them (a hook is its command). */
export function dumpConfig(c: Config): string {
  const shown = structuredClone(c) as unknown as { hooks: Record<string, unknown>; excludeFromFiles?: unknown };
  delete shown.excludeFromFiles;
  for (const name of ['before_backup', 'after_backup'] as const) shown.hooks[name] = c.hooks[name]?.run ?? null;
  return YAML.stringify(shown, { lineWidth: 0 });
}
