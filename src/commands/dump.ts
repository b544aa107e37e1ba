/** `lafs-backup dump BACKUP [PATH]`: a file's bytes, or a directory as a tar or zip stream, on stdout. */
import { isatty } from 'node:tty';
import { resolveBackup } from '../browse/resolve.js';
import { MAX_REVISITED_OPTION, RevisitBudget } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { dumpArchive, dumpFile, entryAt } from '../export/dump.js';
import { backupArguments } from './cap-input.js';
import { defineCommand, loadContext } from './common.js';
import { writeStdout } from './output.js';
import { withSession } from './session.js';

interface DumpArgs {
  backup?: string;
  path?: string;
  'cap-file'?: string | string[];
  archive?: string;
  'max-revisited'?: number;
}

export default defineCommand<DumpArgs>({
  command: 'dump [backup] [path]',
  describe:
    'Write a file of BACKUP to stdout (its bytes, decompressed), or a directory (default: the whole backup) as a tar stream ' +
    '(POSIX pax: owners, modes, nanosecond mtimes, symlinks, hard links, xattrs, ACLs, capabilities) or with --archive zip',
  builder: (y) =>
    y
      .positional('backup', { type: 'string', describe: 'Root cap, backup name (its newest backup), NAME@GENERATION, or - (a cap on stdin)' })
      .positional('path', { type: 'string', describe: 'A file or directory inside the backup (default: all of it)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read the root cap from FILE (then give only PATH, if any): keeps it off the command line, where ps shows it' })
      .option('archive', { type: 'string', requiresArg: true, choices: ['tar', 'zip'], describe: 'The archive a directory is written as (default tar)' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    const { backups, rest } = backupArguments('dump', ['BACKUP', 'PATH'], 1, [args.backup, args.path], ([] as string[]).concat(args['cap-file'] ?? []));
    const config = loadContext(args);
    const revisits = RevisitBudget.fromFlag(args['max-revisited']);
    const format = (args.archive ?? 'tar') as 'tar' | 'zip';
    const backup = await resolveBackup(backups[0]!, config);
    const segments = (rest[0] ?? '').split('/').filter(Boolean);
    return withSession(config, { stop: true, reader: true }, async (s) => {
      const reader = s.reader!;
      const signal = s.signal;
      const sink = (chunk: Buffer) => writeStdout(chunk);
      const o = { client: reader.client, dirs: reader.dirs, sizes: reader.sizes, retry: { attempts: config.http.interactive_retry.attempts, delays: config.http.interactive_retry.delay }, signal, concurrency: config.operation.concurrency, revisits, sink };
      const at = segments.length ? await entryAt(reader.dirs, backup.cap, segments) : undefined;
      if (segments.length && !at) throw new UsageError(`dump: ${JSON.stringify(rest[0])} is not in the backup ${backup.label}`);
      if (at && at.entry.kind === 'file') {
        await dumpFile(o, at.child, at.entry, segments.join('/'));
        return EXIT.OK;
      }
      // An archive is binary: on a terminal it would be noise (and could drive the terminal).
      if (isatty(1)) throw new UsageError(`dump: refusing to write a ${format} archive to a terminal; redirect stdout to a file or a pipe (dump BACKUP [PATH] > out.${format})`);
      let report;
      if (!at) report = await dumpArchive(o, format, backup.cap);
      else if (at.entry.kind === 'dir') report = await dumpArchive(o, format, at.child.ro_uri!, { bytes: at.entry.nameBytes, entry: at.entry });
      else throw new UsageError(`dump: ${JSON.stringify(rest[0])} is a symlink; dump its directory, or read its target with ls`);
      return report.skipped ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});
