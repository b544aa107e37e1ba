/**
 * What every answer of `serve` shares: the security headers (a strict Content-Security-Policy,
 * nosniff, no framing, no caching, no CORS header ever), small bodies (HTML, JSON, text), and a
 * sink for streamed bodies that waits for the client — with a deadline, so a client that stops
 * reading ends its request (and with it the download from the gateway) instead of holding it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Sink } from '../export/archive.js';
import { scrubCaps } from '../core/redact.js';

/** The pages' policy: no script at all, styles and images from here only, no form elsewhere, never framed. */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/** Backed-up content: nothing in it runs, loads or navigates (a unique origin); framed only by our own pages. */
export const CONTENT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'";

export function securityHeaders(res: ServerResponse, csp = PAGE_CSP): void {
  res.setHeader('Content-Security-Policy', csp);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', csp === PAGE_CSP ? 'DENY' : 'SAMEORIGIN');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head = false): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', buf.length);
  res.end(head ? undefined : buf);
}

// Our own pages and answers never carry a cap: one that slipped into a value (a run's record
// holds its root cap) is replaced by its redacted tag, as in every log line.
export const sendHtml = (res: ServerResponse, html: string, status = 200) => send(res, status, 'text/html; charset=utf-8', scrubCaps(html));
export const sendJson = (res: ServerResponse, v: unknown, status = 200) => send(res, status, 'application/json; charset=utf-8', `${scrubCaps(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)))}\n`);
export const sendText = (res: ServerResponse, status: number, text: string) => send(res, status, 'text/plain; charset=utf-8', `${text}\n`);

/** The client went away, or stopped reading for longer than the deadline. */
export class ClientGone extends Error {}

/**
 * A per-request signal: aborted when the client closes the connection before the answer ended
 * (walks and downloads for it stop), or when the server stops.
 */
export function requestSignal(req: IncomingMessage, res: ServerResponse, server: AbortSignal): AbortSignal {
  const ac = new AbortController();
  const gone = () => {
    if (!res.writableFinished) ac.abort(new ClientGone('the client closed the connection'));
  };
  res.on('close', gone);
  req.on('error', gone);
  const onServer = () => ac.abort(server.reason);
  server.addEventListener('abort', onServer, { once: true });
  res.on('close', () => server.removeEventListener('abort', onServer));
  return ac.signal;
}

/**
 * A sink writing into `res`: resolves when the socket took the chunk or drained; rejects (and
 * destroys the connection) when the client has not read for `idleMs`, or is gone. Memory per
 * request: the socket's buffer and the chunk in hand, whatever the size of what is sent.
 */
export function responseSink(res: ServerResponse, signal: AbortSignal, idleMs: number): Sink & { written: () => number } {
  let written = 0;
  const sink = async (chunk: Buffer) => {
    signal.throwIfAborted();
    written += chunk.length;
    if (res.write(chunk)) return;
    await new Promise<void>((ok, fail) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        res.off('drain', onDrain);
        res.off('close', onClose);
        if (err) fail(err);
        else ok();
      };
      const onDrain = () => done();
      const onClose = () => done(new ClientGone('the client closed the connection'));
      const timer = setTimeout(() => {
        res.destroy();
        done(new ClientGone(`the client read nothing for ${idleMs / 1000} s`));
      }, idleMs);
      res.on('drain', onDrain);
      res.on('close', onClose);
    });
  };
  return Object.assign(sink, { written: () => written });
}

/** An attachment's Content-Disposition: an ASCII fallback and the exact name (RFC 6266 / 5987). */
export function attachment(name: Buffer): string {
  const ascii = name.toString('latin1').replace(/[^\x20-\x7e]|["\\%;]/g, '_') || 'download';
  const exact = [...name].map((b) => (/[A-Za-z0-9!#$&+.^_`|~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
