// The baseline of benchmark (b): a bare program that PUTs every file under a directory to
// the gateway, one after the other, and nothing else (run as its own process, like ours).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';

const [url, root] = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
})(root);
for (const f of files) {
  const res = await request(url, { method: 'PUT', body: readFileSync(f) });
  await res.body.text();
}
