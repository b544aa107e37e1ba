// Rewrites README.md's configuration reference from config/default.yaml (run by `npm run docs`).
import { readFileSync, writeFileSync } from 'node:fs';
import { withReference } from '../dist/config/reference.js';

const readme = new URL('../README.md', import.meta.url);
const before = readFileSync(readme, 'utf8');
const after = withReference(before);
if (after !== before) writeFileSync(readme, after);
console.log(after === before ? 'README.md: configuration reference already up to date' : 'README.md: configuration reference rewritten');
