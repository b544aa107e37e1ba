/** `lafs-backup diff A B`: compare two backups, or a backup and a local directory. */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Differ } from '../browse/diff.js';
import { resolveBackup } from '../browse/resolve.js';
import { MAX_REVISITED_OPTION, RevisitBudget } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { Selector, selectionOf } from '../scan/select.js';
import { backupArguments } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { JsonLists, LineBatch } from './output.js';
import { withSession } from './session.js';

/** A command-line argument naming a local path rather than a backup. */
function isPath(arg: string): boolean {
  return !arg.startsWith('URI:') && (arg.includes('/') || arg.startsWith('.'));
}

export default defineCommand<{ a?: string; b?: string; 'cap-file'?: string | string[]; json?: boolean; checksum?: boolean; 'max-revisited'?: number }>({
  command: 'diff [a] [b]',
  describe:
    'Compare A and B — each a backup (root cap, name, NAME@GENERATION) or a local directory (a path: with a / or starting with .) — and print what was added (+), ' +
    'removed (-) or changed (M, with what: contents, mode, uid, gid, mtime, acls, caps, xattrs, target, type)',
  builder: (y) =>
    y
      .positional('a', { type: 'string', describe: 'The older side' })
      .positional('b', { type: 'string', describe: 'The newer side' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read a side\'s root cap from FILE (the first side, then the second; the arguments give the rest): keeps it off the command line, where ps shows it' })
      .option('checksum', { type: 'boolean', describe: 'Against a local directory, compare file contents byte for byte even when mtime and size agree' })
      .option('json', { type: 'boolean', describe: 'Print {added, removed, changed} as JSON' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    // A side given as - or with --cap-file is a cap; any other is read below (a path or a backup).
    const sides = backupArguments('diff', ['A', 'B'], 2, [args.a, args.b], ([] as string[]).concat(args['cap-file'] ?? []), 2).backups;
    const config = loadContext(args);
    RevisitBudget.fromFlag(args['max-revisited']);
    // A local directory only when the argument is a path (has a '/' or starts with '.'): a
    // backup named like a subdirectory of the current one must not be read as that directory.
    const side = async (arg: string) => {
      if (isPath(arg)) {
        if (!existsSync(arg) || !statSync(arg).isDirectory()) throw new UsageError(`diff: ${JSON.stringify(arg)} is not a directory (a path names a local directory; a backup is a cap, NAME or NAME@GENERATION)`);
        // The walk keeps local paths as bytes (any name bytes), in a latin1 string.
        return { kind: 'local' as const, root: Buffer.from(resolve(arg)).toString('latin1') };
      }
      return { kind: 'backup' as const, root: (await resolveBackup(arg, config)).cap };
    };
    const [a, b] = [await side(sides[0]!), await side(sides[1]!)];
    // No stop: a walk of a local directory would not notice it; a signal ends diff as it would any program.
    return withSession(config, { client: true }, async (s) => {
      const differ = new Differ(s.client!, Boolean(args.checksum), () => RevisitBudget.fromFlag(args['max-revisited']), new Selector(selectionOf(config)));
      if (args.json) {
        // {added, removed, changed} in bounded memory: each list is spooled to a private
        // temporary file as the walk finds it, and the three are copied out at the end.
        const spool = JsonLists.create(['added', 'removed', 'changed']);
        try {
          await differ.compare(a, b, (e) => (e.kind === 'M' ? spool.add('changed', { path: e.path, what: e.what }) : spool.add(e.kind === '+' ? 'added' : 'removed', e.path)));
          await spool.writeTo(process.stdout);
        } finally {
          spool.remove();
        }
      } else {
        // Lines as they are found, a batch at a time, waiting when stdout is slow.
        const lines = new LineBatch(out);
        try {
          await differ.compare(a, b, (e) => lines.add(e.kind === 'M' ? `M ${e.path} (${e.what.join(', ')})` : `${e.kind} ${e.path}`));
        } finally {
          // What was found before a walk had to stop is out before the line that says why.
          await lines.flush();
        }
      }
      return differ.cycles ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});
