/** The real `lafs-backup serve` in a child process, and plain HTTP requests to it (node:http: every header under the test's control). */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { spawnCli, waitForLine } from '../support/cli.js';

export interface Served {
  child: ChildProcess;
  port: number;
  token: string;
  url: string;
  stderr: () => string;
  /** SIGTERM, and the exit code. */
  stop: () => Promise<number | null>;
}

export async function startServe(args: string[]): Promise<Served> {
  const child = spawnCli([...args, 'serve']);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end();
  const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
  let m: RegExpMatchArray;
  try {
    m = await waitForLine(child, /^(http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]+))$/m);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\nstderr: ${err}`);
  }
  return {
    child,
    url: m[1]!,
    port: Number(m[2]),
    token: m[3]!,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      if (/uri(:|%3a)[a-z0-9-]+(:|%3a)[a-z2-7]{5,}/i.test(err)) throw new Error(`a cap reached stderr of serve:\n${err}`);
      return code;
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface Req {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Host header (default 127.0.0.1:PORT). */
  host?: string;
}

export function request(port: number, path: string, r: Req = {}): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false, method: r.method ?? 'GET', headers: { host: r.host ?? `127.0.0.1:${port}`, ...r.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        ok({ status: res.statusCode!, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(r.body);
  });
}

/** Signs in with the token: the cookie the server set. */
export async function signIn(s: Served): Promise<string> {
  const a = await request(s.port, `/?token=${s.token}`);
  const set = ([] as string[]).concat(a.headers['set-cookie'] ?? []);
  if (a.status !== 303 || !set.length) throw new Error(`sign-in answered ${a.status}`);
  return set[0]!.split(';')[0]!;
}

/** Peak and current resident memory of a process (kB), from /proc. */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
