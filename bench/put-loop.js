// The baseline of benchmark (b): a bare program that PUTs every file under a directory to
// the gateway, N at a time (default 1), and nothing else (run as its own process, like ours).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';

const [url, root, n = '1'] = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
})(root);
const dispatcher = new Agent({ connections: Number(n) });
let next = 0;
await Promise.all(
  Array.from({ length: Number(n) }, async () => {
    while (next < files.length) {
      const f = files[next++];
      const res = await request(url, { method: 'PUT', body: readFileSync(f), dispatcher });
      await res.body.text();
    }
  }),
);
await dispatcher.close();
