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
import { loadConfig, readYamlFile } from '../config/load.js';
import { gatewayUri, initTarget } from '../config/locate.js';
import { configFile } from '../config/reference.js';
import { SCHEMA_FILE } from '../config/schema.js';
import { ConfigError, describeErrno, EXIT, UsageError } from '../errors.js';
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
    if (args.path === '') throw new UsageError('init: PATH is empty (an unset variable?); give the directory to back up, or none');
    const target = resolve(files[0] ?? initTarget());
    if (existsSync(target) && !args.force) throw new UsageError(`init: ${target} exists; refusing to overwrite it (--force replaces it)`);
    // --force over a file that names a lafs dir keeps that dir: its cap is the key to the backups linked there.
    const kept = existsSync(target) ? keptLafsDir(target) : undefined;
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
    try {
      if (gateway) {
        values['destination.url'] = gatewayUri(gateway);
        // Checked as any configuration is, before a request is sent.
        const config = loadConfig({ layers: [{ origin: args.gateway !== undefined ? '--gateway' : 'LAFS_BACKUP_GATEWAY', values: { 'destination.url': values['destination.url'] } }] });
        values['destination.result.append_to_lafs_dir'] = kept ?? (await withSession(config, { client: true }, (s) => s.client!.mkdirMutable()));
      } else if (kept) {
        values['destination.result.append_to_lafs_dir'] = kept;
      }
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
    const which = kept ? 'the lafs directory cap it held before' : "the new lafs directory's cap";
    process.stderr.write(`lafs-backup: wrote ${target} (mode 0600${cap ? `; it holds ${which}: keep it private` : ''})\n`);
    await out(target);
    return EXIT.OK;
  },
});

/** The lafs dir an existing configuration names (a file that cannot be read names none: it is replaced as asked). */
function keptLafsDir(file: string): string | undefined {
  try {
    const tree = readYamlFile(file) as { destination?: { result?: { append_to_lafs_dir?: unknown } } };
    const cap = tree.destination?.result?.append_to_lafs_dir;
    return typeof cap === 'string' && cap.startsWith('URI:') ? cap : undefined;
  } catch {
    return undefined;
  }
}
