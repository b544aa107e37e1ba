/**
 * A small HTTP proxy in front of a real upstream (the embedded grid) that misbehaves on
 * purpose, per request: 5xx or 4xx answers, connections reset before or in the middle of the
 * request body or in the middle of the answer, answers that never come or trickle in, and
 * answers cut short (a clean end before the stats line of a stream). It counts what it did.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';

export type Fault = 'ok' | '500' | '503' | '400' | 'reset' | 'reset-mid-request' | 'reset-mid-response' | 'hang' | 'slow' | 'truncate';

export interface RequestInfo {
  method: string;
  url: string;
}

export interface Flaky {
  url: string;
  requests: number;
  /** How many times each fault was applied. */
  applied: Record<string, number>;
  /** Decides the fault for the n-th request (0-based). */
  plan: (n: number, req: RequestInfo) => Fault;
  /** Stops listening (connections are refused) for `ms`, then listens on the same port again. */
  outage(ms: number): void;
  close(): Promise<void>;
}

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

export async function startFlaky(upstream: string, plan: (n: number, req: RequestInfo) => Fault): Promise<Flaky> {
  const up = new URL(upstream);
  const hung: ServerResponse[] = [];
  const state: Flaky = { url: '', requests: 0, applied: {}, plan, outage: () => {}, close: async () => {} };

  function forward(req: IncomingMessage, res: ServerResponse, fault: Fault): void {
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      if (fault === 'reset-mid-response') {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
          setTimeout(() => res.socket?.destroy(), 5);
        });
        return;
      }
      if (fault === 'truncate') {
        const headers = { ...r.headers };
        delete headers['content-length'];
        res.writeHead(r.statusCode ?? 502, headers);
        let sent = 0;
        r.on('data', (chunk: Buffer) => {
          if (sent < 200) res.write(chunk.subarray(0, 200 - sent));
          sent += chunk.length;
        });
        r.on('end', () => res.end());
        return;
      }
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (fault === 'slow') r.pipe(trickle()).pipe(res);
      else r.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    if (fault === 'reset-mid-request') {
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        fwd.write(chunk);
        if (seen > 0) {
          fwd.destroy();
          req.socket.destroy();
        }
      });
      return;
    }
    req.pipe(fwd);
  }

  const server = createServer((req, res) => {
    const fault = state.plan(state.requests++, { method: req.method ?? 'GET', url: req.url ?? '' });
    state.applied[fault] = (state.applied[fault] ?? 0) + 1;
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'hang') {
      req.resume();
      hung.push(res);
      return;
    }
    if (fault === '500' || fault === '503' || fault === '400') {
      req.resume();
      req.on('end', () => {
        res.writeHead(Number(fault), { 'content-type': 'text/plain' });
        res.end(fault === '400' ? 'bad request' : 'UploadUnhappinessError: not enough servers (URI:CHK:should-be-scrubbed)');
      });
      return;
    }
    forward(req, res, fault);
  });
  server.on('connection', (s) => s.setNoDelay(true));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/uri`;
  const port = (server.address() as AddressInfo).port;
  let down: Promise<void> | undefined;
  state.outage = (ms) => {
    if (down) return;
    server.closeAllConnections();
    down = new Promise<void>((ok) => server.close(() => ok())).then(
      () =>
        new Promise<void>((ok) =>
          setTimeout(() => {
            server.listen(port, '127.0.0.1', () => {
              down = undefined;
              ok();
            });
          }, ms),
        ),
    );
  };
  state.close = async () => {
    await down;
    for (const r of hung) r.destroy();
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  };
  return state;
}
