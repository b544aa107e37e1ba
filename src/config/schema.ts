/**
 * The configuration, described once: config/schema.json (JSON Schema, draft-07) holds every
 * key's type, range, default and meaning. From it come the validator (compiled by ajv when the
 * package is built: scripts/schema.mjs), config/default.yaml and the README's reference
 * (reference.ts, `npm run docs`), and what an editor completes (`dump-config --schema`).
 *
 * What JSON Schema cannot say is named in the schema and checked here, after it (`x-check`):
 * regexes that must compile by Python's rules and run in linear time, rates, the lafs dir's
 * cap, a backup name, the gateway URL, exclude patterns. `x-path` says how a key's relative
 * paths are resolved (load.ts). Errors name the key; load.ts puts the file in front.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkName } from './series-name.js';
import { parseRate } from '../core/ratelimit.js';
import { ConfigError } from '../errors.js';
import { compileExcludes } from '../scan/excludes.js';
import { compileNameRules, compileRules, compileSizeRules } from '../scan/filters.js';
import { scrubUrl } from '../core/redact.js';
import { assertWritableDirCap } from '../tahoe/caps.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../../config/schema.json', import.meta.url));

/** The parts of a JSON Schema node this program reads. */
export interface SchemaNode {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  $ref?: string;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  'x-check'?: Check;
  'x-path'?: PathKind;
  'x-header'?: string[];
  $defs?: Record<string, SchemaNode>;
}

/** How a key's relative paths are resolved: one path, a list of paths, a hook's command. */
export type PathKind = 'single' | 'list' | 'hook';
type Check = 'rules' | 'size-rules' | 'names' | 'rate' | 'backup-name' | 'dircap' | 'gateway-url' | 'globs';

let schema: SchemaNode | undefined;

/** config/schema.json, read once. */
export function configSchema(): SchemaNode {
  return (schema ??= JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as SchemaNode);
}

/** A key (as opposed to a section of keys): every key has a default. */
export function isLeaf(n: SchemaNode): boolean {
  return Object.hasOwn(n, 'default');
}

/** The node of child `key` of section `n`, if there is one. */
export function childOf(n: SchemaNode, key: string): SchemaNode | undefined {
  return n.properties && Object.hasOwn(n.properties, key) ? n.properties[key] : undefined;
}

function resolveRef(n: SchemaNode): SchemaNode | undefined {
  const m = /^#\/\$defs\/(.+)$/.exec(n.$ref ?? '');
  return m ? configSchema().$defs?.[m[1]!] : undefined;
}

/** Every key, dotted, in the schema's order (for the README reference, default.yaml and tests). */
export function leafKeys(node: SchemaNode = configSchema(), prefix = ''): string[] {
  if (prefix && isLeaf(node)) return [prefix];
  return Object.entries(node.properties ?? {}).flatMap(([k, child]) => leafKeys(child, prefix ? `${prefix}.${k}` : k));
}

/** The node of a dotted key. */
export function nodeAt(key: string): SchemaNode {
  let n: SchemaNode | undefined = configSchema();
  for (const part of key.split('.')) n = n && childOf(n, part);
  if (!n) throw new Error(`config/schema.json has no key ${key}`);
  return n;
}

/** What a key expects, said to a person: its title (or its definition's), else from its type. */
export function expected(n: SchemaNode): string {
  if (n.title) return n.title;
  const def = resolveRef(n);
  if (def) return expected(def);
  if (n.properties && !isLeaf(n)) return 'a mapping of keys';
  if (n.type === 'boolean') return 'true or false';
  if (n.type === 'integer') {
    const max = n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER ? ` to ${n.maximum}` : '';
    return `a whole number from ${n.minimum ?? 0}${max}`;
  }
  if (n.enum) return `one of ${n.enum.join(', ')}`;
  return `a value of type ${String(n.type)}`;
}

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

/** Runs a key's check beyond JSON Schema on a value the schema accepted; throws a ConfigError naming `key`. */
export function checkBeyond(n: SchemaNode, v: unknown, key: string): void {
  switch (n['x-check']) {
    case undefined:
      return;
    case 'rules':
      compileRules(v as string[], key);
      return;
    case 'size-rules':
      compileSizeRules(v as (string | [number, string])[], key);
      return;
    case 'names':
      compileNameRules(v as string[], key);
      return;
    case 'rate':
      parseRate(v as string | number | null, key);
      return;
    case 'backup-name':
      if (v !== null) checkName(v as string, key);
      return;
    case 'dircap':
      if (v !== null) assertWritableDirCap(v as string, key);
      return;
    case 'gateway-url':
      checkGatewayUrl(v, key);
      return;
    case 'globs':
      compileExcludes(v as string[], key);
      return;
  }
}
