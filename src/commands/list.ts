/** `lafs-backup list`: finished backups, and (with -g) the cache entries of generations. */
import { EXIT } from '../errors.js';
import { defineCommand, isoTime, loadContext, out } from './common.js';
import { withSession } from './session.js';

export default defineCommand<{ json?: boolean; generations?: number[] }>({
  command: 'list',
  describe: 'List finished backups (name, generation, time, last check, root cap); -g also lists cache entries of unfinished generations, or of the ones given',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', describe: 'Print JSON instead of a table' })
      .option('generations', { alias: 'g', type: 'number', array: true, describe: 'List cache entries of these generations (none given: of the unfinished ones)' }),
  run: async (args) => {
    const config = loadContext(args);
    // Read-only: list works on a cache on a read-only disk, and never changes it.
    return withSession(config, { cache: { mode: 'read', missing: 'error', command: 'list' } }, async (s) => {
      const cache = s.cache!;
      const backups = cache.listBackups().map((b) => ({ name: b.name, source: b.source, generation: b.generation, finished: isoTime(b.ts), last_check: b.tsCheck ? isoTime(b.tsCheck) : null, cap: b.cap }));
      let generations: { generation: number; finished: boolean; entries: { kind: string; path?: string; cap: string }[] }[] | undefined;
      if (args.generations) {
        const finished = new Set(backups.map((b) => b.generation));
        const wanted = args.generations.length ? args.generations : cache.danglingGenerations();
        generations = wanted.map((g) => ({ generation: g, finished: finished.has(g), entries: [...cache.entriesOf(g)] }));
      }
      if (args.json) {
        await out(JSON.stringify(generations ? { backups, generations } : { backups }, null, 2));
        return EXIT.OK;
      }
      const rows = [['NAME', 'GEN', 'FINISHED', 'LAST CHECK', 'ROOT CAP'], ...backups.map((b) => [b.name, String(b.generation), b.finished, b.last_check ?? 'never', b.cap])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      const lines = backups.length ? rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ')) : ['no finished backups'];
      for (const g of generations ?? []) {
        lines.push('', `generation ${g.generation} (${g.finished ? 'finished' : 'no finished backup'}): ${g.entries.length} cache entries`);
        for (const e of g.entries) lines.push(`  ${e.kind.padEnd(7)} ${e.path === undefined ? '(directory)' : JSON.stringify(e.path)} ${e.cap}`);
      }
      await out(lines.join('\n'));
      return EXIT.OK;
    });
  },
});
