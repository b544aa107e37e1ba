/**
 * `lafs-backup dump-config`: the effective configuration (defaults + files + flags) as YAML.
 * Caps are redacted unless --reveal-caps; the user and password of a URL (the gateway's) are
 * always: the output gets pasted into bug reports, and the password is in your file already.
 */
import { readFileSync } from 'node:fs';
import { dumpConfig } from '../config/load.js';
import { SCHEMA_FILE } from '../config/schema.js';
import { EXIT } from '../errors.js';
import { scrubCaps, scrubUrl } from '../core/redact.js';
import { defineCommand, loadContext, out, selectionOptions, type SelectionArgs } from './common.js';

export default defineCommand<{ 'reveal-caps'?: boolean; schema?: boolean } & SelectionArgs>({
  command: 'dump-config',
  describe: "Print the effective configuration (defaults, then each -c file, then flags) as YAML; caps are shown redacted unless --reveal-caps, a URL's user and password always",
  builder: (y) =>
    // The options backup takes for what it leaves out: shown as they would be in effect.
    selectionOptions(y)
      .option('reveal-caps', {
        type: 'boolean',
        describe: 'Show caps (append_to_lafs_dir) in full: this output is often pasted into bug reports. A URL\'s user and password stay hidden (***) even so',
      })
      .option('schema', {
        type: 'boolean',
        describe: "Print the configuration's JSON Schema instead (what editors complete and check a file with; also config/schema.json in the package)",
      })
      .conflicts('schema', 'reveal-caps'),
  run: async (args) => {
    if (args.schema) {
      // The schema alone: no configuration is read (a broken one must not stop you reading how to fix it).
      await out(readFileSync(SCHEMA_FILE, 'utf8'));
      return EXIT.OK;
    }
    const text = dumpConfig(loadContext(args));
    await out(args['reveal-caps'] ? scrubUrl(text) : scrubCaps(text));
    return EXIT.OK;
  },
});
