/** Answers shaped like a Tahoe gateway's: headers, content types, chunked or sized bodies. */
import type { IncomingMessage, ServerResponse } from 'node:http';

const COMMON: Record<string, string> = {
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  Server: 'lafs-backup-grid (a stand-in: stores plaintext, encrypts nothing)',
};

export interface AnswerOptions {
  /** Send without Content-Length (Transfer-Encoding: chunked), as Twisted does for many answers. */
  chunked?: boolean;
  etag?: string;
  headers?: Record<string, string>;
}

export function answer(res: ServerResponse, status: number, contentType: string, body: string | Buffer, opts: AnswerOptions = {}): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const headers: Record<string, string> = { ...COMMON, 'Content-Type': contentType, ...opts.headers };
  if (opts.etag) headers.ETag = opts.etag;
  if (!opts.chunked) headers['Content-Length'] = String(buf.length);
  res.writeHead(status, headers);
  if (res.req.method === 'HEAD') res.end();
  else if (opts.chunked) {
    if (buf.length) res.write(buf);
    res.end();
  } else res.end(buf);
}

export function answerCap(res: ServerResponse, cap: string): void {
  answer(res, 200, 'text/html', cap, { chunked: true });
}

export function plainError(res: ServerResponse, status: number, text: string): void {
  answer(res, status, 'text/plain;charset=utf-8', text);
}

export function htmlError(res: ServerResponse, status: number, message: string): void {
  const title = status === 404 ? '404 - Error' : `${status} - Error`;
  const body = `\n<html>\n  <head><title>${title}</title></head>\n  <body>\n    <h1>Error</h1>\n    <p>${escapeHtml(message)}</p>\n  </body>\n</html>\n`;
  answer(res, status, 'text/html; charset=utf-8', body);
}

/**
 * A 500 like Twisted's: an HTML traceback page whose exception stands in `<div class="error">`
 * blocks (twice, as on a real gateway), or a plain-text traceback when the client asks for text.
 * `error` is `module.Class: message`.
 */
export function exception(req: IncomingMessage, res: ServerResponse, error: string): void {
  if ((req.headers.accept ?? '').includes('text/plain')) {
    plainError(res, 500, `Traceback (most recent call last):\n  [frames omitted by the embedded grid]\n${error}\n`);
    return;
  }
  const colon = error.indexOf(': ');
  const cls = colon < 0 ? error : error.slice(0, colon);
  const message = colon < 0 ? '' : error.slice(colon + 2);
  const block = `  <div class="error">\n    <span>${escapeHtml(cls)}</span>: <span>${escapeHtml(message)}</span>\n  </div>\n`;
  const html =
    `<!DOCTYPE html>\n<html>\n<head><title>Exception</title>\n<style type="text/css">div.error { color: red; }</style>\n</head>\n<body>\n` +
    `<b>web.Server Traceback (most recent call last):</b>\n${block}<div class="stackTrace">[frames omitted by the embedded grid]</div>\n${block}</body>\n</html>\n`;
  answer(res, 500, 'text/html', html, { chunked: true });
}

/** What a real gateway answers when fewer than shares.happy servers can take shares (recording 12). */
export function unhappyUpload(req: IncomingMessage, res: ServerResponse, up: number, shape: { needed: number; happy: number; total: number }): void {
  const { needed, happy, total } = shape;
  const tag = Math.random().toString(36).slice(2, 7);
  exception(
    req,
    res,
    `allmydata.interfaces.UploadUnhappinessError: server selection failed for <Tahoe2ServerSelector for upload b'${tag}'>: ` +
      `shares could be placed on only ${up} server(s) such that any ${needed} of them have enough shares to recover the file, ` +
      `but we were asked to place shares on at least ${happy} such servers. (placed all ${total} shares, want to place shares on at least ${happy} servers ` +
      `such that any ${needed} of them have enough shares to recover the file, sent ${up} queries to ${up} servers, ${up} queries placed some shares, 0 placed none ` +
      `(of which 0 placed none due to the server being full and 0 placed none due to an error))`,
  );
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export const NO_SHARES_TEXT =
  'NoSharesError: no shares could be found. Zero shares usually indicates a corrupt URI, or that no servers were connected, but it might also indicate severe corruption. You should perform a filecheck on this object to learn more.\n\nThe full error message is:\nno shares (need 2). Last failure: None';

export const UNRECOVERABLE_MUTABLE_TEXT =
  'UnrecoverableFileError: the directory (or mutable file) could not be retrieved, because there were insufficient good shares. This might indicate that no servers were connected, insufficient servers were connected, the URI was corrupt, or that shares have been lost due to server departure, hard drive failure, or disk corruption. You should perform a filecheck on this object to learn more.';

/** Reads a request body into memory, up to `limit` bytes. */
export async function readBody(req: IncomingMessage, limit = 1 << 30): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
