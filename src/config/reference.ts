/**
 * The README's configuration reference, generated from config/default.yaml (its keys, their
 * defaults and the comment above each), so the two cannot drift: `npm run docs` rewrites the
 * README section, and a test fails when it differs from what this produces.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { DEFAULTS_FILE } from './load.js';
import { leafKeys } from './schema.js';

export const REFERENCE_BEGIN = '<!-- config-reference:begin (generated from config/default.yaml by `npm run docs`; do not edit) -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').trim();
}

/** The pair holding dotted `key`, with the comment written above it. */
function find(doc: YAML.Document, key: string): { value: unknown; comment: string } {
  let node: unknown = doc.contents;
  let comment = '';
  for (const part of key.split('.')) {
    if (!YAML.isMap(node)) throw new Error(`config/default.yaml: ${key} is missing`);
    const map: YAML.YAMLMap = node;
    const pair = map.items.find((p) => String((p.key as YAML.Scalar).value) === part);
    if (!pair) throw new Error(`config/default.yaml: ${key} is missing`);
    // The comment before a map's first key belongs to the map node in `yaml`'s model.
    comment = (pair.key as YAML.Scalar).commentBefore ?? (map.items[0] === pair ? (map.commentBefore ?? '') : '');
    node = pair.value;
  }
  return { value: YAML.isNode(node) ? node.toJSON() : node, comment };
}

/** The markdown table: one row per key, in the file's order. */
export function configReference(yamlText = readFileSync(DEFAULTS_FILE, 'utf8')): string {
  const doc = YAML.parseDocument(yamlText);
  const rows = ['| Key | Default | Meaning |', '| --- | --- | --- |'];
  for (const key of leafKeys()) {
    const { value, comment } = find(doc, key);
    const shown = YAML.stringify(value, { collectionStyle: 'flow', lineWidth: 0 }).trim();
    rows.push(`| \`${key}\` | \`${cell(shown)}\` | ${cell(comment.replace(/\s*\n\s*/g, ' '))} |`);
  }
  return rows.join('\n');
}

/** `text` (a README) with its reference section replaced by the generated one. */
export function withReference(text: string, reference = configReference()): string {
  const a = text.indexOf(REFERENCE_BEGIN);
  const b = text.indexOf(REFERENCE_END);
  if (a < 0 || b < a) throw new Error('README.md has no configuration reference markers');
  return `${text.slice(0, a + REFERENCE_BEGIN.length)}\n${reference}\n${text.slice(b)}`;
}
