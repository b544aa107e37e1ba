/** `lafs-backup dump-config`: the effective configuration (defaults + files + flags) as YAML. */
import { dumpConfig } from '../config/load.js';
import { EXIT } from '../errors.js';
import { defineCommand, loadContext, out } from './common.js';

export default defineCommand({
  command: 'dump-config',
  describe: 'Print the effective configuration (defaults, then each -c file, then flags) as YAML',
  run: async (args) => {
    await out(dumpConfig(loadContext(args)));
    return EXIT.OK;
  },
});
