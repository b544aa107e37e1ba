/**
 * The Tahoe-LAFS web-API client: the only module that speaks HTTP.
 *
 * It hides retries (connection failures and 5xx, never 4xx), time limits, streamed bodies
 * and the web API's JSON shapes. It never logs a cap: operations are named by what they do,
 * and a cap, where one must be mentioned, by `redact(cap)`.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent, Dispatcher } from 'undici';
import { log, logs } from '../log.js';
import { assertImmutableReadCap, assertWritableDirCap, parseCap, redact, scrubCaps, tryParseCap } from './caps.js';
import { codeForStatus, TahoeError, toTahoeError } from './errors.js';
import { describeGatewayError } from './gateway-errors.js';
import { parseNodeJson } from './nodejson.js';
import { ndjsonUnits } from './ndjson.js';
import { UploadGuard } from './upload-guard.js';
import type { Child } from '../core/entry.js';
import type { NodeInfo, StreamUnit } from './types.js';

export interface RetryPolicy {
  /** How many times a failed call is tried again (0: never). */
  attempts: number;
  /** Seconds to wait before each retry; the last one repeats. */
  delays: number[];
}

export interface ClientOptions {
  /** The gateway's `/uri` endpoint, e.g. `http://127.0.0.1:3456/uri`. */
  url: string;
  retry?: RetryPolicy;
  /** Seconds without progress (waiting for headers or body data) before a call is abandoned. */
  idleTimeout?: number;
  /** `operation.timeouts.updates`: per-attempt limits (seconds) for uploads; the last repeats. */
  uploadTimeouts?: number[];
  /** PEM files with the CAs to trust for an https gateway (in addition to none: only these). */
  caFiles?: string[] | null;
  /** Connections kept open to the gateway. */
  connections?: number;
  /** Log each request and answer at debug level (caps redacted like everywhere else). */
  debugRequests?: boolean;
  /** Called before each request goes out (rate limiting by objects). */
  beforeRequest?: () => Promise<void>;
  /** The run's signal: when it is aborted, requests in flight and retry waits stop at once. */
  signal?: AbortSignal;
}

/** A body that can be produced again for a retry: a stream (unknown length) or bytes. */
export type BodyFactory = () => Readable | Buffer | Promise<Readable | Buffer>;

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

interface CallSpec {
  op: string;
  method: Method;
  /** Path and query below `/uri`, already encoded. */
  path: string;
  body?: string | BodyFactory;
  /** Upload time limits apply (stall while sending; wait for the answer). */
  upload?: boolean;
  /** 404 is an answer, not an error (unlink). */
  accept404?: boolean;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, delays: [10, 60, 600] };

/** What this client uses of undici: its connection pool and its request call. */
interface Http {
  Agent: typeof Agent;
  request(url: string, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData>;
}

/**
 * undici, loaded with the first request (a backup of an unchanged tree, `list` or `cleanup`
 * make none). Its index loads every part of undici (fetch, websockets, mocks, caches): ~0.1 s
 * of start-up on a 2-core machine, on the path to the first upload. The two modules we use cost
 * a third of that; undici has no `exports` map, so they can be loaded by path, and their call
 * is the documented `Dispatcher.request(options)`. If a later undici moves them, the whole
 * package is loaded instead (a test in test/tahoe/client.test.ts notices the slow path).
 */
let http: Promise<Http & { narrow: boolean }> | undefined;
export function loadHttp(): Promise<Http & { narrow: boolean }> {
  return (http ??= (async () => {
    try {
      const [agent, api] = await Promise.all([import('undici/lib/dispatcher/agent.js'), import('undici/lib/api/api-request.js')]);
      const call = api.default as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
      if (typeof agent.default === 'function' && typeof call === 'function') {
        return {
          narrow: true,
          Agent: agent.default as typeof Agent,
          request: (text, { dispatcher, ...opts }) => {
            const url = new URL(text); // as undici's own request(url, …) parses it
            return call.call(dispatcher, { ...opts, origin: url.origin, path: `${url.pathname}${url.search}` });
          },
        };
      }
    } catch {
      // moved in this undici: the whole package below
    }
    const u = await import('undici');
    return { narrow: false, Agent: u.Agent, request: (url, opts) => u.request(url, opts) };
  })());
}

export class TahoeClient {
  readonly base: URL;
  private readonly agentOptions: Agent.Options;
  private agent?: Agent;
  private closed = false;
  private readonly retry: RetryPolicy;
  private readonly idleMs: number;
  private readonly uploadTimeouts: number[];
  private readonly debugRequests: boolean;
  private readonly beforeRequest?: () => Promise<void>;
  /** The run's signal: once aborted, every request in flight, and every one after it, fails at once. */
  private readonly stop: AbortSignal;
  /** A retryable failure was reported and no call has succeeded since: one warning per outage. */
  private troubled = false;

  constructor(opts: ClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new TahoeError('gateway URL', 'bad-request', `not a URL: ${JSON.stringify(scrubCaps(opts.url))}`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TahoeError('gateway URL', 'bad-request', `unsupported scheme ${base.protocol}`);
    }
    this.base = new URL(base.href.replace(/\/+$/, ''));
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.idleMs = Math.max(1, (opts.idleTimeout ?? 300) * 1000);
    this.uploadTimeouts = opts.uploadTimeouts?.length ? opts.uploadTimeouts : [1200, 2400, 3600];
    this.debugRequests = opts.debugRequests ?? false;
    this.beforeRequest = opts.beforeRequest;
    this.stop = opts.signal ?? new AbortController().signal;
    // Each request in flight listens on the run's signal (and stops listening when done): as
    // many listeners as requests at once, by design. Node's leak warning at 11 would print to
    // stderr of every run with a concurrency above ten; the number is bounded by the pools.
    setMaxListeners(0, this.stop);
    const ca = opts.caFiles?.length ? opts.caFiles.map((f) => readFileSync(f)) : undefined;
    this.agentOptions = {
      connections: opts.connections ?? 8,
      keepAliveTimeout: 30_000,
      pipelining: 1,
      connect: ca ? { ca } : undefined,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.agent?.close();
  }

  // ---- immutable uploads -------------------------------------------------------------

  /** `PUT /uri` with a streamed body of unknown length; returns the file's cap. */
  async putFile(body: BodyFactory): Promise<string> {
    const text = await this.callText({ op: 'PUT /uri (upload)', method: 'PUT', path: '', body, upload: true });
    return this.expectCap(text, 'PUT /uri (upload)', (c) => !c.isDir && c.isImmutable && !c.isVerifier);
  }

  /** `POST /uri?t=mkdir-immutable`; every child cap is validated before anything is sent. */
  async mkdirImmutable(children: Child[]): Promise<string> {
    const op = 'POST /uri?t=mkdir-immutable';
    const body = serializeChildren(children);
    const text = await this.callText({ op, method: 'POST', path: '?t=mkdir-immutable', body, upload: true });
    return this.expectCap(text, op, (c) => c.isDir && c.isImmutable && !c.isVerifier);
  }

  // ---- reading ------------------------------------------------------------------------

  /** `GET /uri/CAP[/PATH…]?t=json`, parsed into a typed node. */
  async info(cap: string, path: string[] = []): Promise<NodeInfo> {
    const op = `GET ?t=json of ${redact(cap)}${path.length ? ' (a path inside it)' : ''}`;
    const text = await this.callText({ op, method: 'GET', path: `/${capPath(cap, path)}?t=json` });
    return parseNodeJson(text, op);
  }

  /** `GET /uri/CAP[/PATH…]`: the contents, as a stream. The caller must consume or destroy it. */
  async download(cap: string, path: string[] = []): Promise<Readable> {
    return Readable.from(await this.downloadChunks(cap, path), { objectMode: false });
  }

  /**
   * The same contents as chunks, with no stream around them (restore writes each straight to
   * its file). The caller must iterate to the end or break out (which ends the request).
   */
  async downloadChunks(cap: string, path: string[] = []): Promise<AsyncGenerator<Buffer>> {
    const op = `GET (download) of ${redact(cap)}`;
    const res = await this.withRetries(op, (ctl) => this.send({ op, method: 'GET', path: `/${capPath(cap, path)}` }, ctl));
    // A body that breaks off fails as the gateway's error, typed here, not as a bare socket error.
    return typedBody(res.body as unknown as AsyncIterable<Buffer>, op);
  }

  // ---- mutable directories (result destination) ---------------------------------------

  /** `POST /uri?t=mkdir`: a new, empty mutable directory; returns its write cap. */
  async mkdirMutable(): Promise<string> {
    const op = 'POST /uri?t=mkdir';
    const text = await this.callText({ op, method: 'POST', path: '?t=mkdir' });
    return this.expectCap(text, op, (c) => c.isDir && c.isWrite);
  }

  /** `PUT /uri/DIRCAP/NAME?t=uri`: links `cap` under `name` (replacing by default). */
  async link(dircap: string, name: string, cap: string, replace = true): Promise<void> {
    assertWritableDirCap(dircap, 'link target directory');
    parseCap(cap, `link '${name}'`);
    const op = `PUT ?t=uri (link '${name}')`;
    const query = replace ? '?t=uri' : '?t=uri&replace=false';
    await this.callText({ op, method: 'PUT', path: `/${capPath(dircap, [name])}${query}`, body: cap });
  }

  /** `DELETE /uri/DIRCAP/NAME`; returns false when the name was already gone (404). */
  async unlink(dircap: string, name: string): Promise<boolean> {
    assertWritableDirCap(dircap, 'unlink directory');
    const op = `DELETE (unlink '${name}')`;
    return this.withRetries(op, async (ctl) => {
      const res = await this.send({ op, method: 'DELETE', path: `/${capPath(dircap, [name])}`, accept404: true }, ctl);
      await res.body.dump();
      return res.statusCode !== 404;
    });
  }

  // ---- streams: deep-check and manifest -------------------------------------------------

  /** `POST /uri/CAP?t=stream-deep-check`: one unit per node, then stats (or an ERROR unit). */
  deepCheck(cap: string, opts: { addLease?: boolean; repair?: boolean; verify?: boolean } = {}): AsyncIterable<StreamUnit> {
    let q = '?t=stream-deep-check';
    if (opts.addLease) q += '&add-lease=true';
    if (opts.repair) q += '&repair=true';
    if (opts.verify) q += '&verify=true';
    return this.stream(`POST ?t=stream-deep-check of ${redact(cap)}`, `/${capPath(cap, [])}${q}`);
  }

  /** `POST /uri/CAP?t=stream-manifest`: one unit per node (cap, storage index…), then stats. */
  manifest(cap: string): AsyncIterable<StreamUnit> {
    return this.stream(`POST ?t=stream-manifest of ${redact(cap)}`, `/${capPath(cap, [])}?t=stream-manifest`);
  }

  private async *stream(op: string, path: string): AsyncIterable<StreamUnit> {
    // Retries are only possible before the first unit was handed out.
    const res = await this.withRetries(op, (ctl) => this.send({ op, method: 'POST', path }, ctl));
    yield* ndjsonUnits(res.body as unknown as AsyncIterable<Buffer>, op);
  }

  // ---- plumbing -----------------------------------------------------------------------

  private expectCap(text: string, op: string, ok: (c: NonNullable<ReturnType<typeof tryParseCap>>) => boolean): string {
    const cap = tryParseCap(text.trim());
    if (!cap || !ok(cap)) {
      throw new TahoeError(op, 'protocol', `the gateway answered something that is not the expected cap (${text.length} bytes)`);
    }
    return cap.text;
  }

  private async callText(spec: CallSpec): Promise<string> {
    return this.withRetries(spec.op, async (ctl, n) => {
      const res = await this.send(spec, ctl, n);
      return res.body.text();
    });
  }

  /**
   * Runs `attempt` with the retry policy. Each attempt gets its own controller, aborted by
   * the run's signal too (a listener, not AbortSignal.any: that is slow and retains signals in Node 20).
   */
  private async withRetries<T>(op: string, attempt: (ctl: AbortController, n: number) => Promise<T>): Promise<T> {
    for (let n = 0; ; n++) {
      if (this.stop.aborted) throw new TahoeError(op, 'aborted', 'stopped before it was sent');
      const ctl = new AbortController();
      const onStop = () => ctl.abort(this.stop.reason);
      this.stop.addEventListener('abort', onStop, { once: true });
      try {
        const result = await attempt(ctl, n);
        if (this.troubled) {
          this.troubled = false;
          log.info({ op }, 'the gateway answers again');
        }
        return result;
      } catch (err) {
        ctl.abort();
        if (this.stop.aborted) throw new TahoeError(op, 'aborted', 'stopped while in flight', undefined, err);
        const e = toTahoeError(op, err);
        // A local failure (reading the file being uploaded, say) is not the gateway's doing.
        if (!e) throw err;
        if (!e.retryable || n >= this.retry.attempts) throw e;
        const delays = this.retry.delays.length ? this.retry.delays : [0];
        const delay = delays[Math.min(n, delays.length - 1)]!;
        // Concurrent calls all fail during an outage: the first says so, the rest only at debug.
        const line = `${e.message}; retrying in ${delay} s (up to ${this.retry.attempts} times)`;
        if (this.troubled) log.debug({ op, attempt: n + 1, retryIn: delay }, line);
        else log.warn({ op, attempt: n + 1, retryIn: delay }, line);
        this.troubled = true;
        try {
          await sleep(delay * 1000, undefined, { signal: this.stop });
        } catch {
          throw new TahoeError(op, 'aborted', 'stopped while waiting to retry', undefined, err);
        }
      } finally {
        this.stop.removeEventListener('abort', onStop);
      }
    }
  }

  /** One HTTP exchange; non-2xx answers become TahoeErrors carrying the gateway's reason. */
  private async send(spec: CallSpec, ctl: AbortController, attemptNo = 0): Promise<Dispatcher.ResponseData> {
    if (this.beforeRequest) await this.beforeRequest();
    const url = this.base.href + spec.path;
    let body: string | Buffer | Readable | undefined;
    let guard: UploadGuard | undefined;
    if (typeof spec.body === 'function') body = await spec.body();
    else body = spec.body;
    if (spec.upload) {
      const limit = this.uploadTimeouts[Math.min(attemptNo, this.uploadTimeouts.length - 1)]!;
      guard = new UploadGuard(limit * 1000, ctl);
      if (body instanceof Readable) body = guard.watch(body);
      else guard.bodyDone();
    }
    if (this.debugRequests && logs('debug')) log.debug({ op: spec.op, method: spec.method }, 'request');
    let res: Dispatcher.ResponseData;
    try {
      const { Agent, request } = await loadHttp();
      if (this.closed) throw new Error('the gateway client was used after close()');
      this.agent ??= new Agent(this.agentOptions);
      res = await request(url, {
        method: spec.method,
        body,
        dispatcher: this.agent,
        signal: ctl.signal,
        headersTimeout: guard ? 0 : this.idleMs,
        bodyTimeout: this.idleMs,
        headers: typeof spec.body === 'string' ? { 'content-type': 'text/plain; charset=utf-8' } : undefined,
      });
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      throw guard?.timedOut ? new TahoeError(spec.op, 'timeout', guard.reason()) : err;
    } finally {
      guard?.stop();
    }
    if (this.debugRequests && logs('debug')) log.debug({ op: spec.op, status: res.statusCode }, 'answer');
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    if (res.statusCode === 404 && spec.accept404) return res;
    const detail = await gatewayReason(res);
    throw new TahoeError(spec.op, codeForStatus(res.statusCode), `gateway answered ${res.statusCode}${detail}`, res.statusCode);
  }
}

/** The gateway's reason from an error body, in words (see gateway-errors.ts). */
async function gatewayReason(res: Dispatcher.ResponseData): Promise<string> {
  let text = '';
  try {
    text = (await res.body.text()).slice(0, 64 * 1024);
  } catch {
    return '';
  }
  const line = describeGatewayError(text);
  return line ? `: ${line}` : '';
}

async function* typedBody(body: AsyncIterable<Buffer>, op: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (e) {
    throw new TahoeError(op, 'truncated', `the download was cut off: ${toTahoeError(op, e)?.message.slice(op.length + 2) ?? (e as Error).message}`, undefined, e);
  }
}

/** Encodes `CAP/seg/seg` for a URL path: the cap as-is (it is URL-safe), names encoded. */
function capPath(cap: string, path: string[]): string {
  return [cap, ...path.map((p) => encodeURIComponent(p))].join('/');
}

/**
 * The JSON body of `mkdir-immutable`. Children are validated first (a gateway accepts a
 * non-cap string as an "unknown" node without complaint). Metadata objects keep the key
 * order they were built with: the resulting dircap depends on it.
 */
export function serializeChildren(children: Child[]): string {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const c of children) {
    const what = `child ${JSON.stringify(c.name)}`;
    if (seen.has(c.name)) throw new TahoeError('mkdir-immutable', 'bad-request', `${what} appears twice`);
    seen.add(c.name);
    const cap = assertImmutableReadCap(c.cap, what);
    if (cap.isDir !== (c.type === 'dirnode')) {
      throw new TahoeError('mkdir-immutable', 'bad-request', `${what} is a ${c.type} but its cap is a ${cap.kind}`);
    }
    parts.push(`${JSON.stringify(c.name)}: ["${c.type}", {"ro_uri": ${JSON.stringify(c.cap)}, "metadata": ${JSON.stringify(c.metadata)}}]`);
  }
  return `{${parts.join(', ')}}`;
}
