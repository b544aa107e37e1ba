/**
 * The server of `serve`: node:http on one address, every request checked (auth.ts) before
 * anything is read for it, then handed to WebDAV (/dav/) or to the pages and the API
 * (routes.ts). Errors become one status and one line — the grid's 502, ours 500 — never a cap
 * (messages go through scrubCaps, as every log line).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { log } from '../log.js';
import { scrubCaps } from '../core/redact.js';
import { TahoeError } from '../tahoe/errors.js';
import { Guard } from './auth.js';
import { dav } from './dav.js';
import { ClientGone, requestSignal, securityHeaders, sendHtml, sendJson, sendText } from './http.js';
import type { Library } from './library.js';
import { errorPage } from './pages.js';
import { route } from './routes.js';

export interface ServeOptions {
  lib: Library;
  host: string;
  port: number;
  token: string;
  loopback: boolean;
  /** A client that reads nothing for this long is dropped (ms). */
  idleMs: number;
  signal: AbortSignal;
}

export interface Running {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<Running> {
  let guard: Guard | undefined;
  const server = createServer({ requestTimeout: 60_000, headersTimeout: 30_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    handle(req, res, guard!, o).catch((e: unknown) => {
      log.warn(`serve: ${scrubCaps((e as Error).message)}`);
      res.destroy();
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  guard = new Guard(o.token, port, o.host, o.loopback);
  return {
    server,
    port,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, guard: Guard, o: ServeOptions): Promise<void> {
  securityHeaders(res);
  const target = req.url ?? '';
  if (!target.startsWith('/')) return sendText(res, 400, 'a request target must be a path');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  const parts = path.split('/').slice(1);
  const isDav = parts[0] === 'dav';
  const verdict = guard.check(req, new URL(`http://x/?${query}`));
  if (!verdict.ok) {
    if (verdict.status === 401 && (isDav || parts[0] === 'api')) res.setHeader('WWW-Authenticate', 'Basic realm="lafs-backup", charset="UTF-8"');
    log.debug(`serve: ${req.method} refused (${verdict.status}: ${verdict.why})`);
    if (isDav || parts[0] === 'api' || verdict.status === 421) return sendText(res, verdict.status, verdict.status === 421 ? 'Misdirected request: the Host header must name the address served' : 'Unauthorized: open the address `lafs-backup serve` printed (with its token), or give the token as the Basic password');
    return sendHtml(res, errorPage(401, 'Not signed in: open the address `lafs-backup serve` printed, with its token.'), 401);
  }
  if (verdict.via === 'token') {
    res.setHeader('Set-Cookie', guard.setCookie());
    // The token leaves the address bar (and the history) at once.
    if (!isDav && (req.method === 'GET' || req.method === 'HEAD')) {
      query.delete('token');
      res.statusCode = 303;
      res.setHeader('Location', `${path}${query.size ? `?${query}` : ''}`);
      return void res.end();
    }
  }
  log.debug(`serve: ${req.method} ${path}`);
  const signal = requestSignal(req, res, o.signal);
  try {
    if (isDav) return await dav(req, res, o.lib, parts.slice(1), signal, o.idleMs);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, `${req.method}: this server only reads`);
    }
    await route(req, res, { lib: o.lib, signal, idleMs: o.idleMs }, parts, query);
  } catch (e) {
    if (e instanceof ClientGone || signal.aborted) return void res.destroy();
    const grid = e instanceof TahoeError;
    const text = scrubCaps((e as Error).message);
    log.warn(`serve: ${req.method} ${path}: ${text}`);
    if (res.headersSent) return void res.destroy();
    const status = grid ? 502 : 500;
    if (parts[0] === 'api') return sendJson(res, { error: text }, status);
    return sendHtml(res, errorPage(status, grid ? `The gateway could not answer: ${text}` : text), status);
  }
}
