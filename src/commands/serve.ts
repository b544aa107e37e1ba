/** `lafs-backup serve`: the backups in a browser, and over WebDAV — read-only, private by default. */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { Library } from '../serve/library.js';
import { startServer } from '../serve/server.js';
import { newToken } from '../serve/auth.js';
import { readToken } from '../serve/token.js';
import { defineCommand, loadContext, out } from './common.js';
import { stopped } from '../core/stop.js';
import { withSession } from './session.js';

interface ServeArgs {
  port?: number;
  host?: string;
  'token-file'?: string;
  'idle-timeout'?: number;
}

const isLoopback = (h: string) => h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);

export default defineCommand<ServeArgs>({
  command: 'serve',
  describe:
    'Serve the backups read-only to a browser (backups with their figures and a chart, browse, preview, download a file, tar or zip, search, history of a path, diff) ' +
    'and over WebDAV at /dav/; prints http://HOST:PORT/?token=TOKEN and serves until SIGINT/SIGTERM',
  builder: (y) =>
    y
      .option('port', { type: 'number', requiresArg: true, describe: 'The port (default: a free one)' })
      .option('host', { type: 'string', requiresArg: true, describe: 'The address to listen on (default 127.0.0.1; another than loopback needs --token-file, and the traffic is not encrypted)' })
      .option('token-file', { type: 'string', requiresArg: true, describe: 'Keep the token in FILE (made 0600 with a fresh token when missing; refused when others can read it) instead of a fresh one each start' })
      .option('idle-timeout', { type: 'number', requiresArg: true, describe: 'Seconds a client may read nothing of an answer before it is dropped (default 60)' }),
  run: async (args) => {
    const host = args.host ?? '127.0.0.1';
    if (host !== 'localhost' && !isIP(host)) throw new UsageError(`serve: --host ${JSON.stringify(host)} is not an IP address (or localhost)`);
    const port = args.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`serve: --port ${args.port} is not a port number (0-65535)`);
    const idle = args['idle-timeout'] ?? 60;
    if (!(idle > 0) || idle > 86400) throw new UsageError(`serve: --idle-timeout ${args['idle-timeout']} must be a number of seconds from 0 to 86400`);
    const loopback = isLoopback(host);
    if (!loopback && !args['token-file']) throw new UsageError(`serve: --host ${host} is not a loopback address: give --token-file too (a token that outlives one start, kept 0600), and know that the traffic is not encrypted — put TLS in front (a reverse proxy) or use SSH forwarding (ssh -L) instead`);
    const token = args['token-file'] ? readToken(args['token-file']) : newToken();
    const config = loadContext(args);
    // The session's one stop: SIGINT/SIGTERM end the server (its normal end, exit 0), and abort
    // what is in flight (the reader's requests to the gateway) before everything is closed.
    return withSession(config, { stop: true, reader: true, afterStop: 'return' }, async (s) => {
      const lib = new Library(s.reader!, s.signal);
      let running;
      try {
        running = await startServer({ lib, host, port, token, loopback, idleMs: idle * 1000, signal: s.signal });
      } catch (e) {
        throw new UsageError(`serve: cannot listen on ${host}:${port}: ${(e as Error).message}`);
      }
      try {
        if (!loopback) log.warn(`serve: listening on ${host}, which is not loopback: the token and everything served cross the network unencrypted — put TLS in front of it (a reverse proxy) or reach it through SSH forwarding`);
        const shownHost = host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
        await out(`http://${shownHost}:${running.port}/?token=${token}`);
        log.info(`serve: serving ${host}:${running.port} (WebDAV at /dav/) until SIGINT or SIGTERM`);
        // Backups' figures are counted from the start, so the first page has them sooner.
        void lib.figures().catch(() => undefined);
        await stopped(s.signal);
      } finally {
        await running.close();
      }
      return EXIT.OK;
    });
  },
});
