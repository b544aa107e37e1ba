/**
 * What is generated from config/schema.json, so that nothing can drift from it: the README's
 * configuration reference and config/default.yaml (every key with its default, and its
 * description as the comment above it). `npm run docs` rewrites both; a test fails when either
 * differs from what this produces. `init` writes its commented configuration from it too.
 */
import YAML from 'yaml';
import { configSchema, leafKeys, nodeAt } from './schema.js';

export const REFERENCE_BEGIN = '<!-- config-reference:begin (generated from config/schema.json by `npm run docs`; do not edit) -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').trim();
}

/** A value as one line of YAML (flow style). */
export function flowYaml(value: unknown): string {
  return YAML.stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
}

/** The markdown table: one row per key, in the schema's order. */
export function configReference(): string {
  const rows = ['| Key | Default | Meaning |', '| --- | --- | --- |'];
  for (const key of leafKeys()) {
    const n = nodeAt(key);
    rows.push(`| \`${key}\` | \`${cell(flowYaml(n.default))}\` | ${cell((n.description ?? '').replace(/\s*\n\s*/g, ' '))} |`);
  }
  return rows.join('\n');
}

/** `text` (a README) with its reference section replaced by the generated one. */
export function withReference(text: string, reference = configReference()): string {
  const a = text.indexOf('<!-- config-reference:begin');
  const b = text.indexOf(REFERENCE_END);
  if (a < 0 || b < a) throw new Error('README.md has no configuration reference markers');
  return `${text.slice(0, a)}${REFERENCE_BEGIN}\n${reference}\n${text.slice(b)}`;
}

/** A key's default as the value part of a YAML line: lists of numbers in flow style, lists of strings as a block. */
function valueLines(value: unknown, indent: string): string[] {
  if (Array.isArray(value) && value.length && value.every((v) => typeof v === 'string')) {
    return ['', ...value.map((v) => `${indent}  - ${flowYaml(v)}`)];
  }
  return [` ${flowYaml(value)}`];
}

/**
 * A configuration file holding every key of the schema, each with its description as a
 * comment: config/default.yaml as it is (`commented: false`), or every line commented out, for
 * a file a person fills in (`init`). `values` replaces defaults (dotted keys); those lines are
 * left active even when the rest is commented out.
 */
export function configFile(opts: { header: string[]; commented?: boolean; values?: Record<string, unknown> } = { header: configSchema()['x-header'] ?? [] }): string {
  const lines = opts.header.map((h) => (h ? `# ${h}` : '#'));
  const keys = leafKeys();
  let previous: string[] = [];
  for (const key of keys) {
    const parts = key.split('.');
    const given = opts.values && Object.hasOwn(opts.values, key);
    const off = opts.commented && !given ? '# ' : '';
    // Sections opened by this key (those the previous key did not share).
    let shared = 0;
    while (shared < parts.length - 1 && previous[shared] === parts[shared]) shared++;
    for (let i = shared; i < parts.length - 1; i++) {
      const path = parts.slice(0, i + 1).join('.');
      if (i === 0) lines.push('');
      // A section is written active once any key in it is.
      const anyActive = !opts.commented || keys.some((k) => k.startsWith(`${path}.`) && opts.values && Object.hasOwn(opts.values, k));
      lines.push(`${'  '.repeat(i)}${anyActive ? '' : '# '}${parts[i]}:`);
    }
    if (parts.length === 1) lines.push('');
    const indent = '  '.repeat(parts.length - 1);
    const n = nodeAt(key);
    for (const d of (n.description ?? '').split('\n')) lines.push(`${indent}# ${d}`);
    const value = given ? opts.values![key] : n.default;
    const [first, ...rest] = valueLines(value, indent);
    lines.push(`${indent}${off}${parts[parts.length - 1]}:${first}`);
    for (const r of rest) lines.push(`${off ? `${indent}# ${r.slice(indent.length)}` : r}`);
    previous = parts;
  }
  return `${lines.join('\n')}\n`;
}
