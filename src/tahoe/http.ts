/** undici, loaded lazily and narrowly: the only HTTP library the client uses. */
import type { Agent, Dispatcher } from 'undici';

/** What this client uses of undici: its connection pool and its request call. */
export interface Http {
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
 *
 * These stay dynamic imports on purpose: the one-file command bundles undici, and esbuild
 * evaluates a bundled package imported dynamically only when the import runs, where a static
 * import would evaluate it at every start (`--help`, `list`, an unchanged night).
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
