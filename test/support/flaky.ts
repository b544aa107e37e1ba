/**
 * A small HTTP server in front of a real upstream (the embedded grid) that misbehaves on
 * purpose: answers 5xx or 4xx, resets connections, or never answers — for the first N
 * requests or all of them — and counts what it saw.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';

export type Fault = 'ok' | '503' | '400' | 'reset' | 'hang' | 'slow';

/** Passes a response body on in 64 KiB pieces, one every 20 ms (about 3 MB/s). */
function trickle(): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < chunk.length; i += 65536) pieces.push(chunk.subarray(i, i + 65536));
      const next = () => {
        const piece = pieces.shift();
        if (!piece) return cb();
        this.push(piece);
        setTimeout(next, 20);
      };
      next();
    },
  });
}

export interface Flaky {
  url: string;
  requests: number;
  /** Decides the fault for the n-th request (0-based). */
  plan: (n: number) => Fault;
  close(): Promise<void>;
}

export async function startFlaky(upstream: string, plan: (n: number) => Fault): Promise<Flaky> {
  const up = new URL(upstream);
  const hung: import('node:http').ServerResponse[] = [];
  const state: Flaky = { url: '', requests: 0, plan, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const fault = state.plan(state.requests++);
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      req.resume();
      hung.push(res);
      return;
    }
    if (fault === '503' || fault === '400') {
      req.resume();
      req.on('end', () => {
        res.writeHead(Number(fault), { 'content-type': 'text/plain' });
        res.end(fault === '503' ? 'UploadUnhappinessError: not enough servers (URI:CHK:should-be-scrubbed)' : 'bad request');
      });
      return;
    }
    const fwd = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        if (fault === 'slow') r.pipe(trickle()).pipe(res);
        else r.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('connection', (s) => s.setNoDelay(true));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/uri`;
  state.close = async () => {
    for (const r of hung) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  return state;
}
