/**
 * A gateway in front of the real one that answers downloads short with a *consistent*
 * Content-Length: the HTTP exchange is well formed (nothing for the client to notice), only
 * the listing's size tells that the file is not all there. Decided per download by `short`
 * (the n-th download, 0-based, and the request path); everything else passes through as is.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ShortBody {
  url: string;
  /** Downloads seen, and how many of them were answered short. */
  downloads: number;
  shortened: number;
  close(): Promise<void>;
}

export async function startShortBody(upstream: string, short: (n: number, path: string) => boolean): Promise<ShortBody> {
  const up = new URL(upstream);
  const state: ShortBody = { url: '', downloads: 0, shortened: 0, close: async () => {} };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // A download: GET of /uri/CAP with no query (listings are ?t=json).
    const isDownload = req.method === 'GET' && !(req.url ?? '').includes('?') && (req.url ?? '').startsWith('/uri/');
    const cut = isDownload && short(state.downloads++, req.url ?? '');
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      if (!cut || r.statusCode !== 200) {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const whole = Buffer.concat(chunks);
        const half = whole.subarray(0, whole.length >> 1);
        state.shortened++;
        const headers = { ...r.headers, 'content-length': String(half.length) };
        delete headers['transfer-encoding'];
        res.writeHead(200, headers);
        res.end(half);
      });
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/uri`;
  state.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return state;
}
