// `npm run build`, first step: compiles config/schema.json into a validator module
// (src/config/generated/validate.ts) with ajv's standalone code generation.
//
// Why at build time: compiling a schema is ajv's expensive part (~0.1 s for this one, plus
// loading ajv itself, ~0.1 s), and every command checks its configuration. The generated code
// is plain functions; the bundle carries it and the few ajv runtime helpers it calls, not ajv.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import Ajv from 'ajv';
import standaloneCode from 'ajv/dist/standalone/index.js';

const root = new URL('../', import.meta.url);
const schema = JSON.parse(readFileSync(new URL('config/schema.json', root), 'utf8'));
const ajv = new Ajv({ code: { source: true, esm: true }, strict: true, allErrors: false, allowUnionTypes: true, strictTuples: false });
// lafs-backup's own annotations (config/schema.json says what they mean): no validation by ajv.
for (const keyword of ['x-check', 'x-path', 'x-header']) ajv.addKeyword({ keyword });
const validate = ajv.compile(schema);
// The one runtime helper the code requires (string lengths in code points, for minLength) is
// written inline: the module stays ES, with no require() of ajv at run time.
const code = standaloneCode(ajv, validate).replaceAll('require("ajv/dist/runtime/ucs2length").default', '((s) => [...s].length)');
if (/\brequire\(/.test(code)) throw new Error('the generated validator requires a module: inline it in scripts/schema.mjs');
const out = new URL('src/config/generated/', root);
mkdirSync(out, { recursive: true });
const text = `// @ts-nocheck\n// Generated from config/schema.json by scripts/schema.mjs (npm run build); do not edit.\n${code}\n`;
const file = new URL('validate.ts', out);
let old = '';
try {
  old = readFileSync(file, 'utf8');
} catch {
  /* first build */
}
if (old !== text) writeFileSync(file, text);
