/**
 * `lafs-backup ls BACKUP [PATH]`: a listing of a backup with its metadata — each file's size as
 * it is on disk (`-l` adds the size as stored and the encoding). Names are escaped the same way
 * in text and JSON (as in the queue file: `\\`, `\n`, `\xNN`), which is lossless; JSON adds the
 * path's bytes in base64 where escaping changed anything.
 */
import { walkEntries, type WalkedEntry } from '../browse/entries.js';
import { modeString, sizeOnDisk, type EntryInfo } from '../browse/entry-info.js';
import type { BackupReader } from '../browse/reader.js';
import { resolveBackup } from '../browse/resolve.js';
import { MAX_REVISITED_OPTION, RevisitBudget } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { entryAt } from '../export/dump.js';
import { log } from '../log.js';
import { checkedDownload } from '../restore/fetch.js';
import { encodePath } from '../scan/queue-codec.js';
import { backupArguments } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { JsonArrayOut, LineBatch } from './output.js';
import { withSession } from './session.js';

interface LsArgs {
  backup?: string;
  path?: string;
  'cap-file'?: string | string[];
  recursive?: boolean;
  long?: boolean;
  json?: boolean;
  'max-revisited'?: number;
}

export default defineCommand<LsArgs>({
  command: 'ls [backup] [path]',
  describe: 'List a backup (or a directory in it): mode, owner, size as on disk, mtime, name; -l adds the size as stored and the encoding',
  builder: (y) =>
    y
      .positional('backup', { type: 'string', describe: 'Root cap, backup name, NAME@GENERATION, or - (a cap on stdin)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read the root cap from FILE (then give only PATH, if any): keeps it off the command line, where ps shows it' })
      .positional('path', { type: 'string', describe: 'A directory or file inside the backup' })
      .option('recursive', { alias: 'R', type: 'boolean', describe: 'List subdirectories too' })
      .option('long', { alias: 'l', type: 'boolean', describe: 'Also the size as stored (xz: compressed) and the encoding' })
      .option('json', { type: 'boolean', describe: 'Print a JSON array (sizes on disk and as stored, encoding, escaped path and its bytes)' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    const { backups, rest } = backupArguments('ls', ['BACKUP', 'PATH'], 1, [args.backup, args.path], ([] as string[]).concat(args['cap-file'] ?? []));
    const config = loadContext(args);
    const revisits = RevisitBudget.fromFlag(args['max-revisited']);
    const backup = await resolveBackup(backups[0]!, config);
    const path = rest[0];
    return withSession(config, { stop: true, reader: true }, async (s) => {
      const reader = s.reader!;
      const segments = (path ?? '').split('/').filter(Boolean);
      const at = segments.length ? await entryAt(reader.dirs, backup.cap, segments) : undefined;
      if (segments.length && !at) throw new UsageError(`${JSON.stringify(path)} is not in the backup ${backup.label}`);
      // The path's bytes as on disk: each segment's name (a rawname where the edge has one).
      const prefix = at ? at.bytes : Buffer.alloc(0);
      // Rows go out as the walk finds them (bounded memory, whatever the size of the tree).
      const json = args.json ? new JsonArrayOut(out) : undefined;
      const lines = new LineBatch(out);
      let cycles = 0;
      const add = async (w: WalkedEntry) => {
        const row = await lsRow(reader, w);
        return json ? json.add(row) : lines.add(lsLine(row, w.entry, Boolean(args.long)));
      };
      try {
        if (at && (at.entry.kind !== 'dir' || at.child.type !== 'dirnode' || !at.child.ro_uri)) await add({ bytes: prefix, shown: encodePath(prefix), child: at.child, entry: at.entry });
        else {
          const onCycle = (shown: string) => {
            cycles++;
            log.warn(`${JSON.stringify(shown)} is a directory that contains itself (a cycle); not entered again`);
          };
          const start = at ? at.child.ro_uri! : backup.cap;
          for await (const w of walkEntries(reader.dirs, start, { prefix, recursive: Boolean(args.recursive), onCycle, revisits, signal: s.signal })) await add(w);
        }
      } catch (e) {
        // The rows found before the walk had to stop are out before the line that says why.
        if (!json) await lines.flush();
        throw e;
      }
      if (json) await json.end();
      else await lines.flush();
      return cycles ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});

/** One entry as `--json` shows it (and the text line is made of): escaped path, sizes, owner, mtime, encoding, a symlink's target. */
async function lsRow(reader: BackupReader, { bytes, child, entry: e }: WalkedEntry) {
  let target: Buffer | undefined;
  if (e.kind === 'symlink' && child.ro_uri) {
    const chunks: Buffer[] = [];
    for await (const c of checkedDownload(reader.client, child.ro_uri, child.size, undefined, 4096)) chunks.push(c);
    target = Buffer.concat(chunks);
  }
  const shown = encodePath(bytes);
  const size = sizeOnDisk({ cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, e, reader.sizes);
  return {
    path: shown,
    ...(shown !== bytes.toString('utf8') || !Buffer.from(bytes.toString('utf8')).equals(bytes) ? { path_base64: bytes.toString('base64') } : {}),
    type: e.kind,
    mode: e.mode === undefined ? null : e.mode.toString(8),
    uid: e.uid ?? null,
    gid: e.gid ?? null,
    size: e.kind === 'dir' ? null : (size ?? null),
    stored_size: e.kind === 'dir' ? null : (child.size ?? null),
    mtime: e.mtimeNs === undefined ? null : new Date(Number(e.mtimeNs / 1_000_000n)).toISOString(),
    enc: e.enc ?? null,
    ...(target !== undefined ? { target: encodePath(target) } : {}),
  };
}

/** The text line of a row: mode, uid:gid, size on disk (? unknown), with -l the size as stored and the encoding, mtime (UTC), name (-> target). */
function lsLine(row: Awaited<ReturnType<typeof lsRow>>, e: EntryInfo, long: boolean): string {
  const when = row.mtime ? row.mtime.replace('T', ' ').slice(0, 19) : '-'.padEnd(19);
  const onDisk = e.kind === 'dir' ? '-' : row.size === null ? '?' : String(row.size);
  const stored = long ? ` ${(row.stored_size === null ? '-' : String(row.stored_size)).padStart(12)} ${String(row.enc ?? '').padEnd(2)}` : '';
  const name = `${row.path}${row.type === 'dir' ? '/' : ''}${row.target !== undefined ? ` -> ${row.target}` : ''}`;
  return `${modeString(e.kind, e.mode)} ${`${row.uid ?? '?'}:${row.gid ?? '?'}`.padEnd(11)} ${onDisk.padStart(12)}${stored} ${when} ${name}`;
}
