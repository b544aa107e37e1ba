/**
 * A small HTTP proxy in front of a real upstream (the embedded grid) that misbehaves on
 * purpose, per request: 5xx, 4xx and 429 answers (with or without Retry-After), connections
 * reset before or in the middle of the request body or in the middle of the answer, answers
 * that never come or trickle in (in 64 KiB pieces, or one byte at a time), answers cut short
 * (a clean end before the stats line of a stream; a Content-Length shorter than the object),
 * answers that never end, and bad chunked framing. It counts what it did, and keeps each
 * request's method, URL and Range header.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';

export type Fault =
  | 'ok'
  | '500'
  | '503'
  | '400'
  | 'reset'
  | 'reset-mid-request'
  | 'reset-mid-response'
  | 'hang'
  | 'slow'
  | 'truncate'
  /** The upstream's headers, then its body one byte every `trickleMs`. */
  | 'trickle'
  /** 200 and a body that never ends (no upstream request is made). */
  | 'endless-body'
  /** The upstream's answer with a consistent Content-Length of half its length, and that half. */
  | 'short-body'
  /** 429 Too Many Requests, with `Retry-After: retryAfter` (none when it is null). */
  | '429'
  /** 503 with `Retry-After: retryAfter`. */
  | '503-retry-after'
  /** The upstream's headers and the first `cutAfter` bytes of its body (default half), then a reset. */
  | 'reset-mid-download'
  /** A status line and headers announcing chunked framing, then a chunk size that is not hex. */
  | 'bad-chunking'
  /** Passed on without its Range header: a gateway that answers 200 and everything again. */
  | 'no-range';

export interface RequestInfo {
  method: string;
  url: string;
  /** The Range header, if the request had one. */
  range?: string;
}

export interface FlakyOptions {
  /** 'trickle': milliseconds between bytes (default 1000). */
  trickleMs?: number;
  /** '429', '503-retry-after': the Retry-After value (default '1'; null: none). */
  retryAfter?: string | null;
  /** 'reset-mid-download': bytes of the body passed on before the reset (default: half). */
  cutAfter?: number;
}

export interface Flaky {
  url: string;
  requests: number;
  /** How many times each fault was applied. */
  applied: Record<string, number>;
  /** Every request, in order. */
  seen: RequestInfo[];
  /** Decides the fault for the n-th request (0-based). */
  plan: (n: number, req: RequestInfo) => Fault;
  /** Stops listening (connections are refused) for `ms` (Infinity: for good), then listens on the same port again. */
  outage(ms: number): void;
  close(): Promise<void>;
}

/** Passes a response body on in 64 KiB pieces, one every 20 ms (about 3 MB/s). */
function slowly(): Transform {
  return pieces(65536, 20);
}

/** Passes a body on in pieces of `size` bytes, one every `ms`. */
function pieces(size: number, ms: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const parts: Buffer[] = [];
      for (let i = 0; i < chunk.length; i += size) parts.push(chunk.subarray(i, i + size));
      const next = () => {
        const part = parts.shift();
        if (!part) return cb();
        this.push(part);
        setTimeout(next, ms);
      };
      next();
    },
  });
}

export async function startFlaky(upstream: string, plan: (n: number, req: RequestInfo) => Fault, opts: FlakyOptions = {}): Promise<Flaky> {
  const up = new URL(upstream);
  const hung: ServerResponse[] = [];
  const state: Flaky = { url: '', requests: 0, applied: {}, seen: [], plan, outage: () => {}, close: async () => {} };

  function forward(req: IncomingMessage, res: ServerResponse, fault: Fault): void {
    const headers = { ...req.headers };
    if (fault === 'no-range') delete headers.range;
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (r) => {
      if (fault === 'reset-mid-response') {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
          setTimeout(() => res.socket?.destroy(), 5);
        });
        return;
      }
      if (fault === 'reset-mid-download') {
        res.writeHead(r.statusCode ?? 502, r.headers);
        const length = Number(r.headers['content-length'] ?? 0);
        let left = opts.cutAfter ?? Math.max(1, length >> 1);
        r.on('data', (chunk: Buffer) => {
          if (left <= 0) return;
          res.write(chunk.subarray(0, left));
          left -= chunk.length;
          if (left <= 0) {
            r.destroy();
            setTimeout(() => res.socket?.destroy(), 5);
          }
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
      if (fault === 'short-body') {
        const parts: Buffer[] = [];
        r.on('data', (c: Buffer) => parts.push(c));
        r.on('end', () => {
          const all = Buffer.concat(parts);
          const half = all.subarray(0, all.length >> 1);
          const headers = { ...r.headers, 'content-length': String(half.length) };
          delete headers['transfer-encoding'];
          res.writeHead(r.statusCode ?? 502, headers);
          res.end(half);
        });
        return;
      }
      if (fault === 'trickle') {
        const headers = { ...r.headers };
        res.writeHead(r.statusCode ?? 502, headers);
        res.flushHeaders();
        r.pipe(pieces(1, opts.trickleMs ?? 1000)).pipe(res);
        res.on('close', () => r.destroy());
        return;
      }
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (fault === 'slow') r.pipe(slowly()).pipe(res);
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

  /** A 200 whose body never ends: 64 KiB pieces as fast as the client takes them. */
  function endless(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    const piece = Buffer.alloc(65536, 'A');
    const pump = () => {
      while (!res.destroyed && res.write(piece));
      if (!res.destroyed) res.once('drain', pump);
    };
    res.on('close', () => res.removeAllListeners('drain'));
    pump();
  }

  const server = createServer((req, res) => {
    const info: RequestInfo = { method: req.method ?? 'GET', url: req.url ?? '', range: req.headers.range };
    state.seen.push(info);
    const fault = state.plan(state.requests++, info);
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
    if (fault === 'endless-body') return endless(req, res);
    if (fault === 'bad-chunking') {
      req.resume();
      req.on('end', () => {
        // Raw bytes on the socket: Node's own writer would never frame a body wrongly.
        req.socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n0\r\n\r\n');
      });
      return;
    }
    if (fault === '500' || fault === '503' || fault === '400' || fault === '429' || fault === '503-retry-after') {
      req.resume();
      req.on('end', () => {
        const status = fault === '503-retry-after' ? 503 : Number(fault);
        const retryAfter = opts.retryAfter === undefined ? '1' : opts.retryAfter;
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if ((fault === '429' || fault === '503-retry-after') && retryAfter !== null) headers['retry-after'] = retryAfter;
        res.writeHead(status, headers);
        res.end(status === 400 ? 'bad request' : status === 429 ? 'Too Many Requests' : 'UploadUnhappinessError: not enough servers (URI:CHK:should-be-scrubbed)');
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
    const closed = new Promise<void>((ok) => server.close(() => ok()));
    if (ms === Infinity) {
      down = closed;
      return;
    }
    down = closed.then(
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
    if (server.listening) await new Promise<void>((ok) => server.close(() => ok()));
  };
  return state;
}
