/** `lafs-backup dump-config`: the effective configuration (defaults + files + flags) as YAML. */
import { dumpConfig } from '../config/load.js';
import { EXIT } from '../errors.js';
import { scrubCaps } from '../tahoe/caps.js';
import { defineCommand, loadContext, out } from './common.js';

export default defineCommand<{ 'reveal-caps'?: boolean }>({
  command: 'dump-config',
  describe: 'Print the effective configuration (defaults, then each -c file, then flags) as YAML; caps are shown redacted unless --reveal-caps',
  builder: (y) => y.option('reveal-caps', { type: 'boolean', describe: 'Show caps (append_to_lafs_dir) in full: this output is often pasted into bug reports' }),
  run: async (args) => {
    const text = dumpConfig(loadContext(args));
    await out(args['reveal-caps'] ? text : scrubCaps(text));
    return EXIT.OK;
  },
});
