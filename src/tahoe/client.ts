/**
 * The Tahoe-LAFS web-API client: the only module that speaks HTTP.
 *
 * It hides retries (connection failures, 5xx and 429, never other 4xx; a gateway's Retry-After
 * is honoured within the budget), deadlines for whole exchanges (src/tahoe/attempt.ts), size
 * limits on every answer (src/tahoe/body.ts), downloads that resume where they broke off,
 * streamed bodies and the web API's JSON shapes. It never logs a cap: operations are named by
 * what they do, and a cap, where one must be mentioned, by `redact(cap)`.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent, Dispatcher } from 'undici';
import { log, logs } from '../log.js';
import { loadHttp } from './http.js';
import { Attempt, type DeadlineSpec } from './attempt.js';
import { chunksOf, LIMITS, readSome, readText } from './body.js';
import { redact, scrubCaps } from '../core/redact.js';
import { assertWritableDirCap, parseCap, tryParseCap } from './caps.js';
import { childrenBody } from './mkdir-body.js';
import { resumeDownload, type Opened } from './download.js';
import { codeForStatus, readProcessLimits, TahoeError, toTahoeError } from './errors.js';
import { describeGatewayError } from './gateway-errors.js';
import { parseNodeJson } from './nodejson.js';
import { ndjsonUnits } from './ndjson.js';
import { BACKUP_RETRY, parseRetryAfter, retryDelay, type RetryPolicy } from './retry.js';
import { parseWelcome, type GatewayWelcome } from './welcome.js';
import type { Child } from '../core/child.js';
import type { NodeInfo, StreamUnit } from './types.js';

export type { RetryPolicy } from './retry.js';
export { loadHttp } from './http.js';

export interface ClientOptions {
  /** The gateway's `/uri` endpoint, e.g. `http://127.0.0.1:3456/uri`. */
  url: string;
  /** The retry budget (default: the long one, `http.retry`'s defaults). */
  retry?: RetryPolicy;
  /** `http.timeout`: seconds for a whole exchange; each MiB of an answer or line of a stream gives it that long again. */
  timeout?: number;
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

export interface CallSpec {
  op: string;
  method: Method;
  /** Path and query below `/uri`, already encoded. */
  path: string;
  /** An absolute URL instead of `path` (the welcome page is not below `/uri`). */
  url?: string;
  body?: string | BodyFactory;
  /** Upload time limits apply (each MiB sent; then the answer). */
  upload?: boolean;
  /** 404 is an answer, not an error (unlink). */
  accept404?: boolean;
  headers?: Record<string, string>;
}

export class TahoeClient {
  readonly base: URL;
  /** "the gateway at URL", as it may be shown in a line (a password in the URL is replaced by ***). */
  readonly where: string;
  private readonly agentOptions: Agent.Options;
  private agent?: Agent;
  private closed = false;
  private readonly retry: RetryPolicy;
  private readonly timeoutS: number;
  private readonly uploadTimeouts: number[];
  private readonly debugRequests: boolean;
  private readonly beforeRequest?: () => Promise<void>;
  /** The run's signal: once aborted, every request in flight, and every one after it, fails at once. */
  private readonly stop: AbortSignal;
  /**
   * During an outage (a retryable failure and no success since): the highest retry number
   * already announced. Every wait is a WARN, but calls failing together in one outage announce
   * each round once (the first to wait at it); the others log at debug.
   */
  private warnedRound = 0;

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
    this.where = `the gateway at ${scrubCaps(this.base.href)}`;
    this.retry = opts.retry ?? BACKUP_RETRY;
    this.timeoutS = opts.timeout ?? 300;
    this.uploadTimeouts = opts.uploadTimeouts?.length ? opts.uploadTimeouts : [1200, 2400, 3600];
    this.debugRequests = opts.debugRequests ?? false;
    this.beforeRequest = opts.beforeRequest;
    this.stop = opts.signal ?? new AbortController().signal;
    // The limits a failure may have to name (EMFILE leaves no descriptor to read them with).
    readProcessLimits();
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

  // ---- the gateway itself ---------------------------------------------------------------

  /**
   * `GET /?t=json`, the gateway's welcome page: its storage servers (node ids, whether it is
   * connected to each) and introducers. Cheap: the gateway answers from memory.
   */
  async welcome(): Promise<GatewayWelcome> {
    const op = 'GET /?t=json (the gateway\'s welcome page)';
    const url = `${new URL('./', this.base.href).href}?t=json`;
    const text = await this.withRetries(op, false, async (a) => readText(await this.send({ op, method: 'GET', path: '', url }, a), a, op, LIMITS.welcome, this.where));
    return parseWelcome(text, op);
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
    const body = childrenBody(children);
    const text = await this.callText({ op, method: 'POST', path: '?t=mkdir-immutable', body: () => body, headers: { 'content-type': 'text/plain; charset=utf-8' }, upload: true });
    return this.expectCap(text, op, (c) => c.isDir && c.isImmutable && !c.isVerifier);
  }

  // ---- reading ------------------------------------------------------------------------

  /** `GET /uri/CAP[/PATH…]?t=json`, parsed into a typed node (at most LIMITS.listing). */
  async info(cap: string, path: string[] = []): Promise<NodeInfo> {
    const op = `GET ?t=json of ${redact(cap)}${path.length ? ' (a path inside it)' : ''}`;
    const text = await this.callText({ op, method: 'GET', path: `/${capPath(cap, path)}?t=json` }, LIMITS.listing);
    return parseNodeJson(text, op);
  }

  /** `GET /uri/CAP[/PATH…]`: the contents, as a stream. The caller must consume or destroy it. */
  async download(cap: string, path: string[] = []): Promise<Readable> {
    return Readable.from(await this.downloadChunks(cap, path), { objectMode: false });
  }

  /**
   * The same contents as chunks, with no stream around them (restore writes each straight to
   * its file). The caller must iterate to the end or break out (which ends the request).
   * A download that breaks off is resumed where it broke (`Range: bytes=N-`) within the retry
   * budget; it is read to at most the size its cap states (CHK and LIT caps state it).
   */
  async downloadChunks(cap: string, path: string[] = []): Promise<AsyncGenerator<Buffer>> {
    const op = `GET (download) of ${redact(cap)}`;
    const urlPath = `/${capPath(cap, path)}`;
    const parsed = path.length ? undefined : tryParseCap(cap);
    const capSize = parsed && !parsed.isDir && typeof parsed.size === 'number' ? parsed.size : undefined;
    const open = (from: number) => this.open(op, { op, method: 'GET', path: urlPath, headers: from > 0 ? { range: `bytes=${from}-` } : undefined });
    const first = await this.withRetries(op, false, (a) => this.send({ op, method: 'GET', path: urlPath }, a).then((res) => ({ res, a })), true);
    return resumeDownload({ op, where: this.where, first, capSize, open, failed: (err, a, n) => this.afterFailure(op, err, a, n), succeeded: () => this.succeeded(op) });
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
    return this.withRetries(op, false, async (a) => {
      const res = await this.send({ op, method: 'DELETE', path: `/${capPath(dircap, [name])}`, accept404: true }, a);
      await readText(res, a, op, LIMITS.small, this.where);
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
    const { res, a } = await this.withRetries(op, false, async (a) => ({ res: await this.send({ op, method: 'POST', path }, a), a }), true);
    try {
      // Each complete line is progress: a long stream of a big backup keeps its deadline, a trickle does not.
      yield* ndjsonUnits(chunksOf(res, a, op, { max: Number.MAX_SAFE_INTEGER, what: 'a stream' }, this.where), op, () => a.progress());
    } finally {
      a.end(true);
    }
  }

  // ---- plumbing -----------------------------------------------------------------------

  private expectCap(text: string, op: string, ok: (c: NonNullable<ReturnType<typeof tryParseCap>>) => boolean): string {
    const cap = tryParseCap(text.trim());
    if (!cap || !ok(cap)) {
      throw new TahoeError(op, 'protocol', `the gateway answered something that is not the expected cap (${text.length} bytes)`);
    }
    return cap.text;
  }

  /** A call whose answer is text, read within `limit` (a cap by default). */
  private async callText(spec: CallSpec, limit = LIMITS.cap): Promise<string> {
    return this.withRetries(spec.op, spec.upload ?? false, async (a) => readText(await this.send(spec, a), a, spec.op, limit, this.where));
  }

  /** A new attempt with the deadline of its kind (an upload's depends on the attempt number). */
  private attempt(upload: boolean, n: number): Attempt {
    const deadline: DeadlineSpec = upload
      ? { seconds: this.uploadTimeouts[Math.min(n, this.uploadTimeouts.length - 1)]!, key: 'operation.timeouts.updates', upload: true }
      : { seconds: this.timeoutS, key: 'http.timeout' };
    return new Attempt(this.stop, deadline);
  }

  /** One attempt of `spec` (for a download's resumption): the answer and its attempt. */
  private async open(op: string, spec: CallSpec): Promise<Opened> {
    if (this.beforeRequest) await this.beforeRequest();
    if (this.stop.aborted) throw new TahoeError(op, 'aborted', 'stopped before it was sent');
    const a = this.attempt(false, 0);
    try {
      return { res: await this.send(spec, a), a };
    } catch (e) {
      a.end(true);
      throw a.typed(op, e, this.where) ?? e;
    }
  }

  /**
   * Runs `fn` with the retry budget, each try with a fresh attempt (controller and deadline).
   * The attempt ends when `fn` is done, unless `keep` (a stream read after this returns: the
   * caller ends it).
   */
  private async withRetries<T>(op: string, upload: boolean, fn: (a: Attempt) => Promise<T>, keep = false): Promise<T> {
    for (let n = 0; ; n++) {
      // The rate limit's wait (objects per second) is not part of any deadline.
      if (this.beforeRequest) await this.beforeRequest();
      if (this.stop.aborted) throw new TahoeError(op, 'aborted', 'stopped before it was sent');
      const a = this.attempt(upload, n);
      try {
        const result = await fn(a);
        if (!keep) a.end();
        this.succeeded(op);
        return result;
      } catch (err) {
        await this.afterFailure(op, err, a, n);
      }
    }
  }

  private succeeded(op: string): void {
    if (this.warnedRound > 0) {
      this.warnedRound = 0;
      log.info({ op }, 'the gateway answers again');
    }
  }

  /**
   * After try `n` (from 0) failed with `err`: throws the call's final error (not retryable,
   * beyond the budget, the run stopped), or says what failed and when the next try is, and
   * waits for it (a Retry-After within the budget is honoured).
   */
  private async afterFailure(op: string, err: unknown, a: Attempt | undefined, n: number): Promise<void> {
    a?.end(true);
    if (this.stop.aborted) throw new TahoeError(op, 'aborted', 'stopped while in flight', undefined, err);
    const e = a ? a.typed(op, err, this.where) : toTahoeError(op, err, this.where);
    // A local failure (reading the file being uploaded, say) is not the gateway's doing.
    if (!e) throw err;
    if (!e.retryable || n >= this.retry.attempts) throw e;
    const { seconds, note } = retryDelay(this.retry, n, e.retryAfter);
    const at = new Date(Date.now() + seconds * 1000).toISOString();
    const line = `${e.message}; retrying in ${seconds} s${note}, at ${at} (retry ${n + 1} of ${this.retry.attempts})`;
    if (n + 1 > this.warnedRound) {
      this.warnedRound = n + 1;
      log.warn({ op, attempt: n + 1, retryIn: seconds }, line);
    } else log.debug({ op, attempt: n + 1, retryIn: seconds }, line);
    try {
      await sleep(seconds * 1000, undefined, { signal: this.stop });
    } catch {
      throw new TahoeError(op, 'aborted', 'stopped while waiting to retry', undefined, err);
    }
  }

  /** One HTTP exchange up to the answer's headers; non-2xx answers become TahoeErrors carrying the gateway's reason. */
  private async send(spec: CallSpec, a: Attempt): Promise<Dispatcher.ResponseData> {
    const url = spec.url ?? this.base.href + spec.path;
    let body: string | Buffer | Readable | undefined = typeof spec.body === 'function' ? await spec.body() : spec.body;
    if (body instanceof Readable) body = a.meter(body);
    else a.bodySent();
    if (this.debugRequests && logs('debug')) log.debug({ op: spec.op, method: spec.method }, 'request');
    let res: Dispatcher.ResponseData;
    try {
      const { Agent, request } = await loadHttp();
      if (this.closed) throw new Error('the gateway client was used after close()');
      this.agent ??= new Agent(this.agentOptions);
      const headers = { ...(typeof spec.body === 'string' ? { 'content-type': 'text/plain; charset=utf-8' } : {}), ...spec.headers };
      // undici's own idle timers are off: the attempt's deadline covers the whole exchange.
      res = await request(url, { method: spec.method, body, dispatcher: this.agent, signal: a.ctl.signal, headersTimeout: 0, bodyTimeout: 0, headers });
    } catch (err) {
      if (body instanceof Readable) body.destroy();
      throw err;
    }
    if (this.debugRequests && logs('debug')) log.debug({ op: spec.op, status: res.statusCode }, 'answer');
    if (res.statusCode >= 200 && res.statusCode < 300) return res;
    if (res.statusCode === 404 && spec.accept404) return res;
    const retryAfter = res.statusCode === 429 || res.statusCode === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined;
    const detail = describeGatewayError(await readSome(res, LIMITS.errorText.max));
    const e = new TahoeError(spec.op, codeForStatus(res.statusCode), `gateway answered ${res.statusCode}${detail ? `: ${detail}` : ''}`, res.statusCode);
    e.retryAfter = retryAfter;
    throw e;
  }
}

/** Encodes `CAP/seg/seg` for a URL path: the cap as-is (it is URL-safe), names encoded. */
function capPath(cap: string, path: string[]): string {
  return [cap, ...path.map((p) => encodeURIComponent(p))].join('/');
}
