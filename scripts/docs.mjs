// Writes what is generated from config/schema.json (run by `npm run docs`): config/default.yaml
// and README.md's configuration reference.
import { readFileSync, writeFileSync } from 'node:fs';
import { configFile, withReference } from '../dist/config/reference.js';

function update(url, make) {
  const before = readFileSync(url, 'utf8');
  const after = make(before);
  if (after !== before) writeFileSync(url, after);
  console.log(`${url.pathname.endsWith('README.md') ? 'README.md' : 'config/default.yaml'}: ${after === before ? 'already up to date' : 'rewritten'}`);
}
update(new URL('../config/default.yaml', import.meta.url), () => configFile());
update(new URL('../README.md', import.meta.url), (text) => withReference(text));
