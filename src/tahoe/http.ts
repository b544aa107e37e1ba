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
 * is the documented `Dispatcher.request(options)`.
 *
 * These stay dynamic imports on purpose: the one-file command bundles undici, and esbuild
 * evaluates a bundled package imported dynamically only when the import runs, where a static
 * import would evaluate it at every start (`--help`, `list`, an unchanged night). There is no
 * fallback to the whole package: bundled, it was 1 MiB of the command's 2.7 MiB, parsed at
 * every start though never run. A later undici that moves these modules fails the build
 * (esbuild cannot resolve them), or else the first request, with this message — never quietly.
 */
let http: Promise<Http> | undefined;
export function loadHttp(): Promise<Http> {
  return (http ??= (async () => {
    const [agent, api] = await Promise.all([import('undici/lib/dispatcher/agent.js'), import('undici/lib/api/api-request.js')]);
    const call = api.default as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
    if (typeof agent.default !== 'function' || typeof call !== 'function') throw new Error("this undici's lib/dispatcher/agent.js or lib/api/api-request.js is not what lafs-backup was built with (see src/tahoe/http.ts)");
    return {
      Agent: agent.default as typeof Agent,
      request: (text, { dispatcher, ...opts }) => {
        const url = new URL(text); // as undici's own request(url, …) parses it
        return call.call(dispatcher, { ...opts, origin: url.origin, path: `${url.pathname}${url.search}` });
      },
    };
  })());
}
