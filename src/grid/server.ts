/**
 * The embedded grid: a stand-in for a Tahoe-LAFS gateway and its storage servers, speaking
 * the subset of the web API this tool uses. For tests, for trying the tool, and for the demo.
 * It encrypts nothing and keeps every byte in plain text: it is not a grid.
 *
 * Beside the web API it has a control surface under `/__grid/` (and the same as methods):
 * request counters, share damage, stopping and starting simulated storage servers, and the
 * stored objects' state (shares, leases).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeErrno, errnoCode, isSystemError, UsageError } from '../errors.js';
import { pyDumps } from './pyjson.js';
import { resolve } from './nodes.js';
import { answer, exception, plainError } from './respond.js';
import { emptyStats, GridState, type GridShape, type GridStats } from './state.js';
import * as checkApi from './check-api.js';
import * as api from './webapi.js';

export interface GridOptions {
  port?: number;
  host?: string;
  /** Keep the grid's contents here (created if missing); in memory without it. */
  dir?: string;
  shape?: GridShape;
  /**
   * Answer each `/uri` request no sooner than this many milliseconds after it arrived, as a real
   * gateway does while it encrypts, erasure-codes and talks to its storage servers (benchmarks
   * use it to measure the pipeline against a gateway that is the bottleneck). Default 0.
   */
  delayMs?: number;
}

export interface ObjectState {
  si: string;
  kind: 'file' | 'dir' | 'mutable-dir';
  size: number;
  sharesGood: number;
  leaseExpires: number;
  leaseRenewals: number;
}

export class Grid {
  readonly state: GridState;
  private server?: Server;
  private sockets = new Set<import('node:net').Socket>();
  url = '';

  constructor(private readonly opts: GridOptions = {}) {
    this.state = openState(opts);
  }

  /** Starts listening; resolves with the `/uri` endpoint URL. */
  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) exception(req, res, `builtins.Exception: ${(err as Error).message}`);
        else res.destroy();
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.keepAliveTimeout = 60_000;
    const [port, host] = [this.opts.port ?? 0, this.opts.host ?? '127.0.0.1'];
    await new Promise<void>((ok, fail) => {
      server.once('error', (e) => fail(listenError(e, host, port)));
      server.listen(port, host, () => ok());
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.url = `http://${shown}:${addr.port}/uri`;
    return this.url;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.state.flushNow();
    if (!this.server) return;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => server.close(() => ok()));
  }

  // ---- control, in process ---------------------------------------------------------------

  get stats(): GridStats {
    return { ...this.state.stats };
  }

  resetStats(): void {
    this.state.stats = emptyStats();
  }

  /** Removes `count` shares (all when omitted: unrecoverable) of the object a cap or SI names. */
  damage(capOrSi: string, count?: number): void {
    const placement = this.placementOf(capOrSi);
    let left = count ?? Number.POSITIVE_INFINITY;
    for (let s = placement.length - 1; s >= 0 && left > 0; s--) {
      while (placement[s]!.length && left > 0) {
        placement[s]!.pop();
        left--;
      }
    }
    this.state.changed();
  }

  setServer(index: number, up: boolean): void {
    if (index < 0 || index >= this.state.serversUp.length) throw new Error(`no server ${index}`);
    this.state.serversUp[index] = up;
    this.state.changed();
  }

  objects(): ObjectState[] {
    const good = (p: number[][]) => new Set(p.flatMap((sh, i) => (this.state.serversUp[i] ? sh : []))).size;
    return [
      ...[...this.state.objects.values()].map((o) => ({ si: o.si, kind: o.kind, size: o.size, sharesGood: good(o.placement), leaseExpires: o.leaseExpires, leaseRenewals: o.leaseRenewals })),
      ...[...this.state.mutables.values()].map((m) => ({ si: m.si, kind: 'mutable-dir' as const, size: 0, sharesGood: good(m.placement), leaseExpires: m.leaseExpires, leaseRenewals: m.leaseRenewals })),
    ];
  }

  object(capOrSi: string): ObjectState | undefined {
    const si = this.siOf(capOrSi);
    return this.objects().find((o) => o.si === si);
  }

  private siOf(capOrSi: string): string {
    if (!capOrSi.startsWith('URI:')) return capOrSi;
    const r = resolve(this.state, capOrSi);
    if (r.kind === 'chk-file' || r.kind === 'chk-dir') return r.si;
    if (r.kind === 'mutable-dir' && r.dir) return r.dir.si;
    return '';
  }

  private placementOf(capOrSi: string): number[][] {
    const si = this.siOf(capOrSi);
    const p = this.state.objects.get(si)?.placement ?? this.state.mutables.get(si)?.placement;
    if (!p) throw new Error('no such object on this grid');
    return p;
  }

  // ---- HTTP -------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://grid');
    const segments = url.pathname.split('/').slice(1).map(decodeSegment);
    const q = url.searchParams;
    const t = q.get('t');
    const method = req.method ?? 'GET';
    if (segments[0] === '__grid') return this.control(req, res, segments.slice(1), q);
    this.state.stats.requests++;
    const delay = this.opts.delayMs ?? 0;
    if (delay > 0) await new Promise((ok) => setTimeout(ok, delay));
    if (segments[0] === '' || (segments.length === 1 && segments[0] === '')) return this.welcome(res, t);
    if (segments[0] !== 'uri') return plainError(res, 404, 'No such resource');
    const [, cap, ...names] = segments;
    if (names.length && names[names.length - 1] === '') names.pop();
    if (!cap) {
      if (method === 'PUT' && !t) return api.putUri(this.state, req, res);
      if (method === 'POST' && t === 'mkdir-immutable') return api.mkdirImmutable(this.state, req, res);
      if (method === 'POST' && t === 'mkdir') return api.mkdirMutable(this.state, req, res);
      if (method === 'GET' && q.get('uri')) return this.redirect(req, res, q.get('uri')!);
      return plainError(res, 400, `bad request for /uri: ${method} t=${t ?? ''}`);
    }
    if (method === 'GET' || method === 'HEAD') return api.getNode(this.state, req, res, cap, names, t);
    if (method === 'PUT' && t === 'uri' && names.length) return api.linkChild(this.state, req, res, cap, names, q.get('replace') !== 'false');
    if (method === 'DELETE' && names.length) return api.unlinkChild(this.state, req, res, cap, names);
    if (method === 'POST' && t === 'set_children') return api.setChildren(this.state, req, res, cap, names);
    if (method === 'POST' && t === 'check') return checkApi.checkOne(this.state, res, cap, names, q);
    if (method === 'POST' && (t === 'stream-deep-check' || t === 'stream-manifest')) {
      return checkApi.streamWalk(this.state, res, cap, names, q, t === 'stream-deep-check');
    }
    return plainError(res, 400, `the embedded grid does not do ${method} t=${t ?? ''}`);
  }

  private redirect(req: IncomingMessage, res: ServerResponse, cap: string): void {
    const location = `http://${req.headers.host ?? 'localhost'}/uri/${encodeURIComponent(cap)}`;
    const body = `\n<html>\n    <head>\n        <meta http-equiv="refresh" content="0;URL=${location}">\n    </head>\n    <body bgcolor="#FFFFFF" text="#000000">\n    <a href="${location}">click here</a>\n    </body>\n</html>\n`;
    answer(res, 302, 'text/html; charset=utf-8', body, { chunked: true, headers: { Location: location } });
  }

  private welcome(res: ServerResponse, t: string | null): void {
    if (t !== 'json') {
      return answer(res, 200, 'text/html; charset=utf-8', '<html><body>lafs-backup embedded grid: a stand-in for tests and trials. It stores plain text and encrypts nothing.</body></html>');
    }
    const servers = this.state.serverIds.map((id, i) => ({
      nodeid: id,
      connection_status: this.state.serversUp[i] ? 'Connected (embedded grid)' : 'Reconnecting (server stopped)',
      available_space: 1 << 30,
      nickname: `storage${i + 1}`,
      version: 'lafs-backup-grid',
      last_received_data: Date.now() / 1000,
    }));
    answer(res, 200, 'application/json; charset=utf-8', `${pyDumps({ introducers: { statuses: ['Connected (embedded grid)'] }, servers }, 1)}\n`, { chunked: true });
  }

  private control(req: IncomingMessage, res: ServerResponse, segs: string[], q: URLSearchParams): void {
    const json = (v: unknown) => answer(res, 200, 'application/json', `${JSON.stringify(v)}\n`);
    try {
      if (segs[0] === 'stats' && req.method === 'GET') return json(this.stats);
      if (segs[0] === 'stats' && segs[1] === 'reset' && req.method === 'POST') {
        this.resetStats();
        return json({ ok: true });
      }
      if (segs[0] === 'state' && req.method === 'GET') {
        return json({ servers: this.state.serverIds.map((id, i) => ({ id, up: this.state.serversUp[i] })), objects: this.objects() });
      }
      if (segs[0] === 'damage' && req.method === 'POST') {
        const target = q.get('si') ?? q.get('cap') ?? '';
        this.damage(target, q.has('shares') ? Number(q.get('shares')) : undefined);
        return json({ ok: true });
      }
      if (segs[0] === 'servers' && segs[1] !== undefined && (segs[2] === 'stop' || segs[2] === 'start') && req.method === 'POST') {
        this.setServer(Number(segs[1]), segs[2] === 'start');
        return json({ ok: true });
      }
    } catch (e) {
      return plainError(res, 400, (e as Error).message);
    }
    plainError(res, 404, 'unknown control request');
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The grid's state, kept under `dir` when given: a directory that cannot hold it is one line. */
function openState(opts: GridOptions): GridState {
  try {
    return new GridState(opts.dir, opts.shape);
  } catch (e) {
    if (opts.dir === undefined) throw e;
    const why = isSystemError(e) ? describeErrno(e) : e instanceof SyntaxError ? 'its state.json does not parse (is it a grid directory?)' : undefined;
    if (why === undefined) throw e;
    throw new UsageError(`grid: cannot keep the grid in ${opts.dir}: ${why}`);
  }
}

const LISTEN_TROUBLE: Record<string, string> = {
  EADDRINUSE: 'the address is in use (a gateway or another grid listens there?); choose another --port, or --port 0 for a free one',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'that address is not one of this machine',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be looked up',
};

/** Why listening failed, in one line naming the address; anything unforeseen as it is. */
function listenError(e: Error, host: string, port: number): Error {
  const why = LISTEN_TROUBLE[errnoCode(e) ?? ''];
  return why ? new UsageError(`grid: cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`) : e;
}

/** Starts a grid and returns it with its `/uri` URL. */
export async function startGrid(opts: GridOptions = {}): Promise<Grid> {
  const grid = new Grid(opts);
  await grid.start();
  return grid;
}
