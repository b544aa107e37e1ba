/** `lafs-backup grid`: run the embedded web-API-compatible stand-in until interrupted. */
import { EXIT, UsageError } from '../errors.js';
import { startGrid } from '../grid/server.js';
import { defineCommand, loadContext, out } from './common.js';
import { stopped } from '../core/stop.js';
import { withSession } from './session.js';

export default defineCommand<{ port: number; host: string; dir?: string; 'delay-ms': number }>({
  command: 'grid',
  describe:
    'Run the embedded grid: a stand-in for a Tahoe-LAFS gateway, for tests, trials and the demo. ' +
    'It ENCRYPTS NOTHING and keeps plain text (in memory, or under --dir): never use it for real backups.',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 3456, describe: 'TCP port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
      .option('dir', { type: 'string', describe: 'Keep the contents in this directory (default: in memory only)' })
      .option('delay-ms', {
        type: 'number',
        default: 0,
        describe: "Answer each request no sooner than this many ms after it arrived (a slow gateway's time, for benchmarks)",
      }),
  run: async (args) => {
    const config = loadContext(args);
    const port = args.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`grid: --port must be a whole number from 0 to 65535 (got ${String(port)})`);
    const delay = args['delay-ms'];
    if (!Number.isFinite(delay) || delay < 0 || delay > 60_000) throw new UsageError(`grid: --delay-ms must be a number of milliseconds from 0 to 60000 (got ${String(delay)})`);
    // Runs until SIGINT or SIGTERM (the session's stop: here the normal end, exit 0), then stops cleanly (saving state under --dir).
    return withSession(config, { stop: true, afterStop: 'return' }, async (s) => {
      const grid = await startGrid({ port, host: args.host, dir: args.dir, delayMs: delay });
      try {
        process.stderr.write('lafs-backup grid: a stand-in gateway for tests and trials; it encrypts nothing.\n');
        await out(grid.url);
        await stopped(s.signal);
      } finally {
        await grid.stop();
      }
      return EXIT.OK;
    });
  },
});
