/** `lafs-backup stats [BACKUP]`: per backup and generation, what it holds, what it cost, what it shares. */
import { refLabel, selectBackups } from '../browse/backups.js';
import { backupStats, needSome, statsJson } from '../browse/stats.js';
import { MAX_REVISITED_OPTION, RevisitBudget } from '../browse/tree.js';
import { runSummaries } from '../cache/trees.js';
import { EXIT } from '../errors.js';
import { log } from '../log.js';
import { formatBytes } from '../progress.js';
import { backupArguments } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { withSession } from './session.js';

interface StatsArgs {
  backup?: string;
  'cap-file'?: string | string[];
  json?: boolean;
  'max-revisited'?: number;
}

const signed = (n: number, f: (n: number) => string = String) => `${n < 0 ? '-' : '+'}${f(Math.abs(n))}`;

export default defineCommand<StatsArgs>({
  command: 'stats [backup]',
  describe:
    'Statistics of backups (default: every backup; a name: all its generations; NAME@GENERATION or a cap: that one): entries, files, ' +
    'bytes on disk and as stored (by encoding), what was new that night, what it shares with backups of other names, the growth',
  builder: (y) =>
    y
      .positional('backup', { type: 'string', describe: 'A backup name, NAME@GENERATION, a root cap, or - (a cap on stdin)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read the root cap from FILE: keeps it off the command line, where ps shows it' })
      .option('json', { type: 'boolean', describe: 'Print one JSON object: {"backups": [...], "series": [...]}' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    const capFiles = ([] as string[]).concat(args['cap-file'] ?? []);
    const given = args.backup !== undefined || capFiles.length ? backupArguments('stats', ['BACKUP'], 1, [args.backup], capFiles).backups[0] : undefined;
    const config = loadContext(args);
    const maxRevisited = RevisitBudget.fromFlag(args['max-revisited']).limit;
    return withSession(config, { stop: true, reader: true }, async (s) => {
      const reader = s.reader!;
      const signal = s.signal;
      const all = await reader.backups();
      const selected = given === undefined ? all : selectBackups(all, given, 'stats: BACKUP');
      needSome(selected, 'stats');
      // A cap the records do not know is a series of its own.
      const universe = selected.some((b) => !all.includes(b)) ? [...all, ...selected.filter((b) => !all.includes(b))] : all;
      let cycles = 0;
      const gens = backupStats(universe, selected, {
        dirs: reader.dirs,
        sizes: reader.sizes,
        signal,
        maxRevisited,
        runs: reader.cache ? runSummaries(reader.cache) : undefined,
        onCycle: (b, path) => {
          cycles++;
          log.warn(`${refLabel(b)}: ${JSON.stringify(path)} is a directory that contains itself (a cycle); not entered again`);
        },
      });
      const rows: ReturnType<typeof statsJson>[] = [];
      const lines: string[][] = [['BACKUP', 'FINISHED', 'ENTRIES', 'FILES', 'ON DISK', 'STORED', 'XZ', 'NEW FILES', 'NEW', 'SHARED', 'GROWTH']];
      let r = await gens.next();
      for (; !r.done; r = await gens.next()) {
        const g = r.value;
        rows.push(statsJson(g));
        const t = g.totals;
        const unknown = t.unknownSizes ? `+${t.unknownSizes}?` : '';
        lines.push([
          refLabel(g.backup),
          g.backup.time === null ? '-' : new Date(g.backup.time * 1000).toISOString().replace('T', ' ').slice(0, 19),
          String(t.entries),
          String(t.files),
          formatBytes(t.bytes) + unknown,
          formatBytes(t.stored.raw + t.stored.xz),
          formatBytes(t.stored.xz),
          String(g.new.files),
          formatBytes(g.new.bytes),
          formatBytes(t.shared.bytes),
          g.growth ? signed(g.growth.bytes, formatBytes) : '-',
        ]);
      }
      const series = r.value;
      if (args.json) {
        await out(JSON.stringify({ backups: rows, series }, null, 2));
      } else {
        const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
        const text = lines.map((l) => l.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
        for (const s of series) {
          text.push(
            `${s.name}: ${s.generations} generation${s.generations === 1 ? '' : 's'}, ${formatBytes(s.distinct.bytes)} stored in all (${s.distinct.files} distinct files); ` +
              `from the first to the last: ${signed(s.growth.files)} files, ${signed(s.growth.bytes, formatBytes)} on disk`,
          );
        }
        await out(text.join('\n'));
      }
      log.info({ listingsFromCache: reader.dirs.hits, listingsFromGrid: reader.dirs.fetched }, 'stats: listings read');
      return cycles ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});
