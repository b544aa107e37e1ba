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
import { loadConfig } from '../config/load.js';
import { gatewayUri, initTarget } from '../config/locate.js';
import { configFile } from '../config/reference.js';
import { SCHEMA_FILE } from '../config/schema.js';
import { EXIT, UsageError } from '../errors.js';
import { defineCommand, out } from './common.js';
import { withSession } from './session.js';

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
    const files = args.config ?? [];
    if (files.length > 1) throw new UsageError('init: give at most one -c FILE (the file to write)');
    const target = resolve(files[0] ?? initTarget());
    if (existsSync(target) && !args.force) throw new UsageError(`init: ${target} exists; refusing to overwrite it (--force replaces it)`);
    const gateway = args.gateway ?? process.env.LAFS_BACKUP_GATEWAY;
    const values: Record<string, unknown> = {};
    if (args.path !== undefined) values['source.path'] = resolve(args.path);
    if (gateway) {
      values['destination.url'] = gatewayUri(gateway);
      // Checked as any configuration is, before a request is sent.
      const config = loadConfig({ layers: [{ origin: args.gateway !== undefined ? '--gateway' : 'LAFS_BACKUP_GATEWAY', values: { 'destination.url': values['destination.url'] } }] });
      values['destination.result.append_to_lafs_dir'] = await withSession(config, { client: true }, (s) => s.client!.mkdirMutable());
    }
    const header = [
      `lafs-backup configuration, written by \`lafs-backup init\` on ${new Date().toISOString().slice(0, 10)}. Every key is here with its meaning;`,
      'those commented out have their default (config/default.yaml). The file is 0600: the lafs directory cap below (if any)',
      'is the key to every backup linked there. `lafs-backup dump-config` shows what is in effect; `dump-config --schema` the schema.',
    ];
    const text = `# yaml-language-server: $schema=${pathToFileURL(SCHEMA_FILE).href}\n${configFile({ header, commented: true, values })}`;
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    // Written whole to a private temporary file, loaded back as every command will load it, then renamed into place.
    const tmp = `${target}.tmp-${process.pid}`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    try {
      loadConfig({ files: [tmp] });
      renameSync(tmp, target);
    } finally {
      rmSync(tmp, { force: true });
    }
    const cap = values['destination.result.append_to_lafs_dir'] !== undefined;
    process.stderr.write(`lafs-backup: wrote ${target} (mode 0600${cap ? "; it holds the new lafs directory's cap: keep it private" : ''})\n`);
    await out(target);
    return EXIT.OK;
  },
});
