/**
 * The configuration's types. Defaults live in config/default.yaml (documented there, one
 * comment per key); this file only says what each key may hold. A test keeps the two in step.
 *
 * Hand-written rather than a schema library: every error must name the key *and* the layer
 * file it came from, and that is a few lines here against a translation layer over a
 * library's messages.
 */

import { checkName } from '../backup/name.js';
import { parseRate } from '../backup/ratelimit.js';
import { ConfigError } from '../errors.js';
import { compileNameRules, compileRules, compileSizeRules } from '../scan/filters.js';
import { assertWritableDirCap, scrubUrl } from '../tahoe/caps.js';

/** A leaf check: returns undefined when fine, else what was expected. */
export interface Leaf {
  leaf: true;
  expect: string;
  ok: (v: unknown) => boolean;
  /**
   * Relative paths are resolved against the directory of the file that set them; a hook also
   * runs in that directory (see Hook in load.ts).
   */
  path?: 'single' | 'list' | 'hook';
  /** A deeper check of a value of the right type (a regex compiles, a rate is in range): throws a ConfigError naming `key`. */
  validate?: (v: unknown, key: string) => void;
}

export type Node = Leaf | { [key: string]: Node };

export function isLeaf(n: Node): n is Leaf {
  return (n as Leaf).leaf === true;
}

const leaf = (expect: string, ok: (v: unknown) => boolean, path?: Leaf['path'], validate?: Leaf['validate']): Leaf => ({ leaf: true, expect, ok, path, validate });

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const bool = leaf('true or false', (v) => typeof v === 'boolean');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  leaf(`a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`, (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max);
const nullableStr = (path?: Leaf['path']) => leaf('a string or null', (v) => v === null || (typeof v === 'string' && v.length > 0), path);

/**
 * Durations, in seconds. Every one has this range, checked at load time: a time limit is more
 * than nothing (0 would fail every request), and the longest is 7 days, well inside the 2³¹ ms
 * a Node timer holds (longer ones fire after 1 ms). Waits (retry delays, the commit interval)
 * may be 0.
 */
export const DURATION = { min: 0.01, max: 7 * 24 * 3600 } as const;
const inRange = (min: number) => (x: unknown) => isNum(x) && x >= min && x <= DURATION.max;
const rangeText = (min: number) => `a number of seconds from ${min} to ${DURATION.max} (7 days)`;
/** A time limit: from 0.01 s to 7 days. */
const limit = leaf(rangeText(DURATION.min), inRange(DURATION.min));
/** A wait: from 0 to 7 days. */
const wait = leaf(rangeText(0), inRange(0));
/** A number of seconds, or a non-empty list of them (one per attempt, the last repeats). */
const durations = (min: number) =>
  leaf(`${rangeText(min)}, or a non-empty list of them`, (v) => inRange(min)(v) || (Array.isArray(v) && v.length > 0 && v.every(inRange(min))));
const rules = leaf(
  "a list of '+REGEX' / '-REGEX' strings",
  (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
  undefined,
  (v, key) => compileRules(v as string[], key),
);
const sizeRules = leaf(
  "a list of '+REGEX' / '-REGEX' strings or [SIZE, 'REGEX'] pairs",
  (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' || (Array.isArray(x) && x.length === 2 && Number.isInteger(x[0]) && (x[0] as number) >= 0 && typeof x[1] === 'string')),
  undefined,
  (v, key) => compileSizeRules(v as (string | [number, string])[], key),
);
const regexes = leaf(
  "a list of regular expressions (strings)",
  (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0),
  undefined,
  (v, key) => compileNameRules(v as string[], key),
);
const fraction = leaf('null or a number from 0 to 1', (v) => v === null || (isNum(v) && v >= 0 && v <= 1));
const rate = leaf(
  "null, a number of seconds, or 'INTERVAL[:BURST]' like '1/10:50'",
  (v) => v === null || (isNum(v) && v > 0) || (typeof v === 'string' && v.length > 0),
  undefined,
  (v, key) => void parseRate(v as string | number | null, key),
);

/** The gateway's /uri endpoint: a URL that parses (port in range) and ends in /uri. */
function checkGatewayUrl(v: unknown, key: string): void {
  let url: URL;
  try {
    url = new URL(v as string);
  } catch {
    throw new ConfigError(`${key}: ${JSON.stringify(scrubUrl(String(v)))} is not a valid URL (is the port from 1 to 65535?)`);
  }
  if (url.port === '0') throw new ConfigError(`${key}: port 0 is not a gateway's port`);
}
const command = leaf(
  'null, a command string, or a list of strings (argv)',
  (v) => v === null || (typeof v === 'string' && v.length > 0) || (Array.isArray(v) && v.length > 0 && (v[0] as unknown) !== '' && v.every((x) => typeof x === 'string')),
  'hook',
);
// 'none' is left out: lzma-native turns check 0 into CRC32 (`options.check || CHECK_CRC32`).
const XZ_CHECKS = ['crc32', 'crc64', 'sha256'];
const xzOptions = leaf('a mapping with preset (0-9), extreme (true/false), check (crc32, crc64, sha256)', (v) => {
  if (v === null) return true;
  if (typeof v !== 'object' || Array.isArray(v)) return false;
  return Object.entries(v as Record<string, unknown>).every(([k, x]) =>
    k === 'preset' ? Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 9 : k === 'extreme' ? typeof x === 'boolean' : k === 'check' ? XZ_CHECKS.includes(x as string) : false,
  );
});

export const SCHEMA: Node = {
  source: {
    path: nullableStr('single'),
    name: leaf('null or a name (one path segment)', (v) => v === null || typeof v === 'string', undefined, (v, key) => {
      if (v !== null) checkName(v as string, key);
    }),
    pick_policy: leaf("'alphasort_last'", (v) => v === 'alphasort_last'),
    queue: { path: nullableStr('single'), check_mtime: bool },
    extended_metadata: bool,
    entry_cache: { path: nullableStr('single'), commit_after: { queries: int(1), seconds: wait } },
  },
  destination: {
    // The gateway's /uri endpoint: a URL without it would have every call land on the welcome page.
    url: leaf("the http:// or https:// URL of the gateway's /uri endpoint, like http://127.0.0.1:3456/uri", (v) => typeof v === 'string' && /^https?:\/\/[^\s?#]+\/uri\/?$/.test(v), undefined, checkGatewayUrl),
    result: {
      print_to_stdout: bool,
      append_to_file: nullableStr('single'),
      append_to_lafs_dir: leaf('null or a URI:DIR2: cap', (v) => v === null || (typeof v === 'string' && v.startsWith('URI:')), undefined, (v, key) => {
        if (v !== null) assertWritableDirCap(v as string, key);
      }),
    },
    encoding: {
      xz: {
        enabled: bool,
        options: xzOptions,
        min_size: int(0),
        path_filter: sizeRules,
        compressed_names: regexes,
        min_saving: fraction,
        encoders: leaf('null or a whole number from 1 to 64', (v) => v === null || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 64)),
      },
    },
  },
  http: {
    ca_certs_files: leaf('null, a path, or a list of paths', (v) => v === null || (typeof v === 'string' && v.length > 0) || (Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0)), 'list'),
    debug_requests: bool,
    timeout: limit,
    retry: { attempts: int(0, 1000), delay: durations(0) },
    interactive_retry: { attempts: int(0, 1000), delay: durations(0) },
  },
  filter: rules,
  operation: {
    queue_only: bool,
    reuse_queue: bool,
    disable_deduplication: bool,
    hash_before_upload: bool,
    try_resume: bool,
    concurrency: int(1, 256),
    timeouts: { updates: durations(DURATION.min) },
    rate_limit: { bytes: rate, objects: rate },
  },
  logging: {
    level: leaf('one of error, warn, info, debug, noise', (v) => ['error', 'warn', 'info', 'debug', 'noise'].includes(v as string)),
    format: leaf('text or json', (v) => v === 'text' || v === 'json'),
    file: nullableStr('single'),
  },
  hooks: { before_backup: command, after_backup: command, timeout: limit },
};

/** Every leaf key, dotted (for tests and the README reference). */
export function leafKeys(node: Node = SCHEMA, prefix = ''): string[] {
  if (isLeaf(node)) return [prefix];
  return Object.entries(node).flatMap(([k, child]) => leafKeys(child, prefix ? `${prefix}.${k}` : k));
}
