/**
 * `lafs-backup init [PATH]`: writes a configuration file where every command looks for one
 * (`-c FILE`, else `$LAFS_BACKUP_CONFIG`, else `$XDG_CONFIG_HOME/lafs-backup/config.yaml`): every
 * key with its description, commented out except what was given — PATH as source.path, the
 * gateway (--gateway or LAFS_BACKUP_GATEWAY), and, with a gateway, a new mutable directory for
 * destination.result.append_to_lafs_dir, created there and then. The file is 0600 (it may hold
 * that cap) and names the schema for editors (yaml-language-server).
 */
import { closeSync, constants, existsSync, fchmodSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, describeErrno, EXIT, UsageError } from '../errors.js';
import { defineCommand, out } from './common.js';

interface InitArgs {
  path?: string;
  force?: boolean;
}

export default defineCommand<InitArgs>({
  command: 'init [path]',
  describe:
    'Write a commented configuration file where lafs-backup looks for one (-c FILE, else $LAFS_BACKUP_CONFIG, else ~/.config/lafs-backup/config.yaml): PATH as source.path, ' +
    'the gateway of --gateway; with a gateway, also a new mutable lafs directory for the results (the file is 0600: it holds that cap)',
  builder: (y) =>
    y
      .positional('path', { type: 'string', describe: 'The directory to back up (source.path)' })
      .option('force', { type: 'boolean', describe: 'Replace an existing file' }),
  run: async (args) => {
    const { initTarget, gatewayUri } = await import('../config/locate.js');
    const files = args.config ?? [];
    if (files.length > 1) throw new UsageError('init: give at most one -c FILE (the file to write)');
    if (args.path === '') throw new UsageError('init: PATH is empty (an unset variable?); give the directory to back up, or none');
    const target = resolve(files[0] ?? initTarget());
    if (existsSync(target) && !args.force) throw new UsageError(`init: ${target} exists; refusing to overwrite it (--force replaces it)`);
    // The place is made ready first: a lafs dir made before a write that fails would be a cap lost.
    const tmp = `${target}.tmp-${process.pid}`;
    let fd: number;
    try {
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (e) {
      throw new ConfigError(`init: cannot write ${target}: ${describeErrno(e)}; give another place with -c FILE`);
    }
    const gateway = args.gateway ?? process.env.LAFS_BACKUP_GATEWAY;
    const values: Record<string, unknown> = {};
    if (args.path !== undefined) values['source.path'] = resolve(args.path);
    const { loadConfig } = await import('../config/load.js');
    try {
      if (gateway) {
        values['destination.url'] = gatewayUri(gateway);
        // Checked as any configuration is, before a request is sent.
        const config = loadConfig({ layers: [{ origin: args.gateway !== undefined ? '--gateway' : 'LAFS_BACKUP_GATEWAY', values: { 'destination.url': values['destination.url'] } }] });
        const client = (await import('../config/client.js')).clientFor(config);
        try {
          values['destination.result.append_to_lafs_dir'] = await client.mkdirMutable();
        } finally {
          await client.close();
        }
      }
      const { configFile } = await import('../config/reference.js');
      const { SCHEMA_FILE } = await import('../config/schema.js');
      const header = [
        `lafs-backup configuration, written by \`lafs-backup init\` on ${new Date().toISOString().slice(0, 10)}. Every key is here with its meaning;`,
        'those commented out have their default (config/default.yaml). The file is 0600: the lafs directory cap below (if any)',
        'is the key to every backup linked there. `lafs-backup dump-config` shows what is in effect; `dump-config --schema` the schema.',
      ];
      const text = `# yaml-language-server: $schema=${pathToFileURL(SCHEMA_FILE).href}\n${configFile({ header, commented: true, values })}`;
      // Written whole to a private temporary file, loaded back as every command will load it, then renamed into place.
      fchmodSync(fd, 0o600);
      writeSync(fd, text);
      closeSync(fd);
      fd = -1;
      loadConfig({ files: [tmp] });
      renameSync(tmp, target);
    } finally {
      if (fd >= 0) closeSync(fd);
      rmSync(tmp, { force: true });
    }
    const cap = values['destination.result.append_to_lafs_dir'] !== undefined;
    process.stderr.write(`lafs-backup: wrote ${target} (mode 0600${cap ? "; it holds the new lafs directory's cap: keep it private" : ''})\n`);
    await out(target);
    return EXIT.OK;
  },
});
