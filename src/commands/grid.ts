/** `lafs-backup grid`: run the embedded web-API-compatible stand-in until interrupted. */
import { EXIT } from '../errors.js';
import { defineCommand, loadContext, out } from './common.js';

export default defineCommand<{ port: number; host: string; dir?: string }>({
  command: 'grid',
  describe:
    'Run the embedded grid: a stand-in for a Tahoe-LAFS gateway, for tests, trials and the demo. ' +
    'It ENCRYPTS NOTHING and keeps plain text (in memory, or under --dir): never use it for real backups.',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 3456, describe: 'TCP port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
      .option('dir', { type: 'string', describe: 'Keep the contents in this directory (default: in memory only)' }),
  run: async (args) => {
    loadContext(args);
    const { startGrid } = await import('../grid/server.js');
    const grid = await startGrid({ port: args.port, host: args.host, dir: args.dir });
    process.stderr.write('lafs-backup grid: a stand-in gateway for tests and trials; it encrypts nothing.\n');
    await out(grid.url);
    // Runs until SIGINT or SIGTERM, then stops cleanly (saving state under --dir).
    await new Promise<void>((ok) => {
      process.once('SIGINT', () => ok());
      process.once('SIGTERM', () => ok());
    });
    await grid.stop();
    return EXIT.OK;
  },
});
