/** `lafs-backup find PATTERN…`: which backups and generations hold matching paths, newest first. */
import { refLabel, selectBackups } from '../browse/backups.js';
import { findInBackups, hitJson, type FindHit } from '../browse/find.js';
import { MAX_REVISITED_OPTION, RevisitBudget } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { capsFromInput, oneCap } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { JsonArrayOut, LineBatch } from './output.js';
import { withSession } from './session.js';

interface FindArgs {
  patterns?: string[];
  backup?: string | string[];
  'cap-file'?: string | string[];
  newer?: string;
  older?: string;
  size?: string | string[];
  'ignore-case'?: boolean;
  json?: boolean;
  'max-revisited'?: number;
}

const NS_PER_MS = 1_000_000n;

/** A time given as a date (`2026-11-01`, `2026-11-01T12:00`, `…Z`, `…+01:00`; local time without a zone) or as a duration back from now (`7d`, `12h`, `1y2m`). */
export function parseWhen(text: string, flag: string, now = new Date()): bigint {
  const dur = /^(?:\d+[ymwdh])+$/.exec(text);
  if (dur) {
    const d = new Date(now.getTime());
    for (const [, n, unit] of text.matchAll(/(\d+)([ymwdh])/g)) {
      const k = Number(n);
      if (unit === 'y') d.setFullYear(d.getFullYear() - k);
      else if (unit === 'm') d.setMonth(d.getMonth() - k);
      else if (unit === 'w') d.setDate(d.getDate() - 7 * k);
      else if (unit === 'd') d.setDate(d.getDate() - k);
      else d.setHours(d.getHours() - k);
    }
    if (!Number.isNaN(d.getTime())) return BigInt(d.getTime()) * NS_PER_MS;
  }
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|[+-]\d\d:?\d\d)?$/.exec(text);
  if (m) {
    const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
    const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
    let ms: number;
    if (zone) {
      ms = Date.UTC(...parts);
      if (zone !== 'Z') {
        const z = /^([+-])(\d\d):?(\d\d)$/.exec(zone)!;
        ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
      }
    } else ms = new Date(...parts).getTime();
    const check = new Date(Date.UTC(...parts));
    if (!Number.isNaN(ms) && check.getUTCMonth() === parts[1] && check.getUTCDate() === parts[2] && parts[3] < 24 && parts[4] < 60 && parts[5] < 61) {
      return BigInt(ms) * NS_PER_MS + BigInt(frac.padEnd(9, '0') || '0');
    }
  }
  throw new UsageError(`${flag}: ${JSON.stringify(text)} is neither a date (2026-11-01, 2026-11-01T12:00, with Z or +01:00 for a zone) nor a time back from now (7d, 12h, 2w, 1y2m)`);
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `--size`: `+N` at least N bytes, `-N` at most, `N` exactly; N may end in k, M, G, T (powers of 1024). */
export function parseSize(texts: string[]): { min?: number; max?: number } {
  const r: { min?: number; max?: number } = {};
  for (const t of texts) {
    const m = /^([+-]?)(\d+(?:\.\d+)?)([kKmMgGtT]?)$/.exec(t);
    if (!m) throw new UsageError(`--size: ${JSON.stringify(t)} is not a size (+1M: at least a MiB, -10k: at most 10 KiB, 4096: exactly)`);
    const n = Math.round(Number(m[2]) * UNITS[m[3]!.toLowerCase()]!);
    if (m[1] !== '-') r.min = Math.max(r.min ?? 0, n);
    if (m[1] !== '+') r.max = Math.min(r.max ?? Infinity, n);
  }
  return r;
}

/** A repeatable option's values (one given: a string; several: an array). */
function list(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : ([] as string[]).concat(v);
}

/** One hit as a text line: BACKUP, size as on disk (? unknown, - a directory), mtime (UTC), path (a directory's ends in /). */
function hitLine(h: FindHit, label: string): string {
  const size = h.type === 'dir' ? '-' : h.size === undefined ? '?' : String(h.size);
  const when = h.mtimeNs === undefined ? '-'.padEnd(19) : new Date(Number(h.mtimeNs / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
  return `${label} ${size.padStart(12)} ${when} ${h.path}${h.type === 'dir' ? '/' : ''}`;
}

export default defineCommand<FindArgs>({
  command: 'find <patterns..>',
  describe:
    'Find paths in the backups (all generations of all backups, newest first): a pattern without a slash matches names at any depth, ' +
    'one with a slash the path from the root (minimatch globs). Prints backup@generation, size (as on disk), mtime and path',
  builder: (y) =>
    y
      .positional('patterns', { type: 'string', array: true, describe: 'Glob patterns (quote them: the shell would expand them)' })
      .option('backup', { type: 'string', requiresArg: true, describe: 'Look only in these backups (repeatable): a name (all its generations), NAME@GENERATION, a root cap, or - (a cap on stdin)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Look in the backup whose root cap is in FILE (repeatable): keeps caps off the command line, where ps shows them' })
      .option('newer', { type: 'string', requiresArg: true, describe: 'Only entries modified at or after this: a date (2026-11-01, 2026-11-01T12:00) or a time back from now (7d, 12h, 1y2m)' })
      .option('older', { type: 'string', requiresArg: true, describe: 'Only entries modified before this (same forms as --newer)' })
      .option('size', { type: 'string', requiresArg: true, describe: 'Only files of this size as on disk: +N at least, -N at most, N exactly; k, M, G, T suffixes (repeatable: +1M --size -10M)' })
      .option('ignore-case', { alias: 'i', type: 'boolean', describe: 'Match patterns without regard to case' })
      .option('json', { type: 'boolean', describe: 'Print a JSON array of matches' })
      .option('max-revisited', MAX_REVISITED_OPTION),
  run: async (args) => {
    const patterns = (args.patterns ?? []).filter((p) => p !== '');
    if (!patterns.length) throw new UsageError('find: give at least one PATTERN (see --help)');
    const size = parseSize(list(args.size));
    const query = {
      patterns,
      ignoreCase: Boolean(args['ignore-case']),
      newerNs: args.newer === undefined ? undefined : parseWhen(args.newer, '--newer'),
      olderNs: args.older === undefined ? undefined : parseWhen(args.older, '--older'),
      minSize: size.min,
      maxSize: size.max,
    };
    const maxRevisited = RevisitBudget.fromFlag(args['max-revisited']).limit;
    const wanted = list(args.backup);
    const stdin = wanted.filter((b) => b === '-' || b === '').length;
    if (stdin > 1) throw new UsageError('find: only one --backup can be read from stdin (-); give the others with --cap-file');
    // Caps from stdin and cap files are read (and garbage refused) before anything is asked of the gateway.
    const given = wanted.map((b) => (b === '-' || b === '' ? oneCap({ stdin: true }, 'find: --backup') : b));
    const files = list(args['cap-file']);
    if (files.length) given.push(...capsFromInput({ args: [], stdin: false, files }, 'find: --cap-file', { dirs: true }));
    const config = loadContext(args);
    return withSession(config, { stop: true, reader: true }, async (s) => {
      const reader = s.reader!;
      const signal = s.signal;
      const all = await reader.backups();
      const chosen = given.length ? [...new Set(given.flatMap((g) => selectBackups(all, g)))] : all;
      // Newest first: as the list of all backups has them; caps given that it lacks, last.
      const rank = (b: (typeof all)[number]) => (all.indexOf(b) < 0 ? all.length : all.indexOf(b));
      chosen.sort((a, b) => rank(a) - rank(b));
      if (!chosen.length) {
        process.stderr.write(`lafs-backup: find: no backups to look in (no entry cache, result file or lafs dir names any; give --backup CAP or --cap-file FILE)\n`);
        return EXIT.OK;
      }
      const unknownSizes = { count: 0 };
      let cycles = 0;
      const json = args.json ? new JsonArrayOut(out) : undefined;
      const lines = new LineBatch(out);
      let found = 0;
      try {
        const hits = findInBackups(chosen, query, {
          dirs: reader.dirs,
          sizes: reader.sizes,
          signal,
          maxRevisited,
          unknownSizes,
          onCycle: (b, path) => {
            cycles++;
            log.warn(`${refLabel(b)}: ${JSON.stringify(path)} is a directory that contains itself (a cycle); not entered again`);
          },
        });
        for await (const h of hits) {
          found++;
          if (json) await json.add(hitJson(h));
          else await lines.add(hitLine(h, refLabel(h.backup)));
        }
      } catch (e) {
        // What was found before the walk had to stop is out before the line that says why.
        if (!json) await lines.flush();
        throw e;
      }
      if (json) await json.end();
      else await lines.flush();
      if (unknownSizes.count) log.warn(`${unknownSizes.count} file${unknownSizes.count > 1 ? 's' : ''} of unknown size (xz files of backups whose size the entry cache no longer knows) could not be compared with --size`);
      log.info({ backups: chosen.length, found, listingsFromCache: reader.dirs.hits, listingsFromGrid: reader.dirs.fetched }, `find: ${found} found in ${chosen.length} backups`);
      return cycles ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});
