/** `lafs-backup ls BACKUP [PATH]`: a listing of a backup with its metadata. */
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { MAX_REVISITED_OPTION } from '../browse/tree.js';
import { defineCommand, loadContext, out } from './common.js';
import { JsonArrayOut, LineBatch } from './output.js';

export default defineCommand<{ backup?: string; path?: string; 'cap-file'?: string | string[]; recursive?: boolean; json?: boolean; 'max-revisited'?: number }>({
  command: 'ls [backup] [path]',
  describe: 'List a backup (or a directory in it): mode, owner, size as stored (xz: compressed size), mtime, encoding, name',
  builder: (y) =>
    y
      .positional('backup', { type: 'string', describe: 'Root cap, backup name, NAME@GENERATION, or - (a cap on stdin)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read the root cap from FILE (then give only PATH, if any): keeps it off the command line, where ps shows it' })
      .positional('path', { type: 'string', describe: 'A directory or file inside the backup' })
      .option('recursive', { alias: 'R', type: 'boolean', describe: 'List subdirectories too' })
      .option('json', { type: 'boolean', describe: 'Print a JSON array' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    const { backupArguments } = await import('./cap-input.js');
    const { backups, rest } = backupArguments('ls', ['BACKUP', 'PATH'], 1, [args.backup, args.path], ([] as string[]).concat(args['cap-file'] ?? []));
    const config = loadContext(args);
    const { resolveBackup } = await import('../browse/resolve.js');
    const { interpret, modeString } = await import('../browse/entry.js');
    const { RevisitBudget, walkBackup } = await import('../browse/tree.js');
    const revisits = RevisitBudget.fromFlag(args['max-revisited']);
    const { encodePath } = await import('../scan/queue-codec.js');
    const backup = await resolveBackup(backups[0]!, config);
    const path = rest[0];
    const client = (await import('../tahoe/factory.js')).clientFor(config);
    try {
      const segments = (path ?? '').split('/').filter(Boolean);
      let start = backup.cap;
      const single: { path: string[]; node: import('../tahoe/types.js').NodeInfo }[] = [];
      if (segments.length) {
        const parent = await client.info(backup.cap, segments.slice(0, -1));
        const child = parent.children?.[segments[segments.length - 1]!];
        if (!child) throw new UsageError(`${JSON.stringify(path)} is not in the backup ${backup.label}`);
        if (child.type === 'dirnode') start = child.ro_uri!;
        else single.push({ path: segments, node: child });
      }
      // Rows go out as the walk finds them (bounded memory, whatever the size of the tree).
      const json = args.json ? new JsonArrayOut(out) : undefined;
      const lines = new LineBatch(out);
      let cycles = 0;
      const add = async (path: string[], type: string, cap: string | undefined, size: number | undefined, metadata: Record<string, unknown>) => {
        const e = interpret({ path, type: type as 'filenode', cap, size, metadata }, path.slice(0, -1).join('/'));
        let target: string | undefined;
        if (e.kind === 'symlink' && cap) {
          const chunks: Buffer[] = [];
          for await (const c of await client.downloadChunks(cap)) chunks.push(c);
          target = Buffer.concat(chunks).toString('utf8');
        }
        const row = {
          path: path.join('/'),
          type: e.kind,
          mode: e.mode === undefined ? null : e.mode.toString(8),
          uid: e.uid ?? null,
          gid: e.gid ?? null,
          size: e.kind === 'dir' ? null : (size ?? null),
          mtime: e.mtimeNs === undefined ? null : new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
          enc: e.enc ?? null,
          ...(target !== undefined ? { target } : {}),
        };
        if (json) return json.add(row);
        const when = row.mtime ? row.mtime.replace('T', ' ').slice(0, 19) : '-'.padEnd(19);
        const shownSize = row.size === null ? '-' : String(row.size);
        // Escaped as in the queue file: a newline in a name must not break the listing.
        const name = `${encodePath(Buffer.from(row.path))}${row.type === 'dir' ? '/' : ''}${target !== undefined ? ` -> ${encodePath(Buffer.from(target))}` : ''}`;
        return lines.add(`${modeString(e.kind, e.mode)} ${`${row.uid ?? '?'}:${row.gid ?? '?'}`.padEnd(11)} ${shownSize.padStart(12)} ${when} ${String(row.enc ?? '').padEnd(2)} ${name}`);
      };
      for (const s of single) await add(s.path, s.node.type, s.node.ro_uri, s.node.size, s.node.metadata ?? {});
      if (!single.length) {
        const onCycle = (path: string[]) => {
          cycles++;
          log.warn(`${JSON.stringify(path.join('/'))} is a directory that contains itself (a cycle); not entered again`);
        };
        try {
          for await (const n of walkBackup(client, start, segments, { recursive: Boolean(args.recursive), onCycle, revisits })) await add(n.path, n.type, n.cap, n.size, n.metadata);
        } catch (e) {
          // The rows found before the walk had to stop are out before the line that says why.
          if (!json) await lines.flush();
          throw e;
        }
      }
      if (json) await json.end();
      else await lines.flush();
      return cycles ? EXIT.INCOMPLETE : EXIT.OK;
    } finally {
      await client.close();
    }
  },
});
