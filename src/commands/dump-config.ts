/**
 * `lafs-backup dump-config`: the effective configuration (defaults + files + flags) as YAML.
 * Caps are redacted unless --reveal-caps; the user and password of a URL (the gateway's) are
 * always: the output gets pasted into bug reports, and the password is in your file already.
 */
import { dumpConfig } from '../config/load.js';
import { EXIT } from '../errors.js';
import { scrubCaps, scrubUrl } from '../tahoe/caps.js';
import { defineCommand, loadContext, out } from './common.js';

export default defineCommand<{ 'reveal-caps'?: boolean }>({
  command: 'dump-config',
  describe: "Print the effective configuration (defaults, then each -c file, then flags) as YAML; caps are shown redacted unless --reveal-caps, a URL's user and password always",
  builder: (y) =>
    y.option('reveal-caps', {
      type: 'boolean',
      describe: 'Show caps (append_to_lafs_dir) in full: this output is often pasted into bug reports. A URL\'s user and password stay hidden (***) even so',
    }),
  run: async (args) => {
    const text = dumpConfig(loadContext(args));
    await out(args['reveal-caps'] ? scrubUrl(text) : scrubCaps(text));
    return EXIT.OK;
  },
});
