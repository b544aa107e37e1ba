// A baseline of benchmark (a): a bare program that PUTs one file (streamed) and exits.
import { createReadStream } from 'node:fs';
import { request } from 'undici';

const [url, file] = process.argv.slice(2);
const res = await request(url, { method: 'PUT', body: createReadStream(file) });
await res.body.text();
