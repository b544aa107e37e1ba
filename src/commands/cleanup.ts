/** `lafs-backup cleanup`: forget backups locally (cache rows, result destinations). */
import { writeFileSync } from 'node:fs';
import type { BackupRow } from '../cache/db.js';
import { required } from '../config/load.js';
import { EXIT, UsageError } from '../errors.js';
import { executeCleanup, planCleanup, sharesOnlyIn, type CleanupPlan } from '../maintenance/cleanup.js';
import { hasPolicy, parseWithin, selectKept, type KeepPolicy } from '../maintenance/retention.js';
import { redact } from '../core/redact.js';
import type { TahoeClient } from '../tahoe/client.js';
import { capsFromInput, stdinDashes } from './cap-input.js';
import { defineCommand, isoTime, loadContext, out } from './common.js';
import { withSession } from './session.js';

interface CleanupArgs {
  caps?: string[];
  'cap-file'?: string | string[];
  generation?: number[];
  'up-to'?: boolean;
  'enumerate-shares'?: string;
  'enumerate-only'?: boolean;
  'dry-run'?: boolean;
  'keep-last'?: number;
  'keep-hourly'?: number;
  'keep-daily'?: number;
  'keep-weekly'?: number;
  'keep-monthly'?: number;
  'keep-yearly'?: number;
  'keep-within'?: string;
}

const KEEP = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

export default defineCommand<CleanupArgs>({
  command: 'cleanup [caps..]',
  describe:
    'Forget backups LOCALLY: delete their cache generations and rows, and unlink them from the result file and directory. ' +
    'It NEVER deletes data on the grid (shares stay until their leases expire; -e lists the storage indexes only they use). ' +
    'Backups are chosen by cap (arguments, or stdin), by -g, or by --keep-* retention',
  builder: (y) => {
    let b = y
      .positional('caps', { type: 'string', array: true, describe: 'Root caps of backups to forget (- reads them from stdin, one a line; so does giving none, without -g or a policy)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read root caps of backups to forget from FILE, one a line (keeps them off the command line, where ps shows them)' })
      .option('generation', { alias: 'g', type: 'number', array: true, describe: 'Forget this generation (repeatable; unfinished ones too)' })
      .option('up-to', { type: 'boolean', describe: 'Also forget every older generation' })
      .option('enumerate-shares', { alias: 'e', type: 'string', describe: 'Write the storage indexes only the forgotten backups use to FILE (or - / nothing: stdout)' })
      .option('enumerate-only', { alias: 'n', type: 'boolean', describe: 'Only enumerate shares (-e); forget nothing' })
      .option('dry-run', { type: 'boolean', describe: 'Print what would be forgotten; change nothing' });
    for (const k of KEEP) b = b.option(`keep-${k}`, { type: 'number', describe: k === 'last' ? 'Keep the N newest backups (per source name)' : `Keep the newest backup of each of the last N ${k === 'daily' ? 'days' : k.replace(/ly$/, 's')} that have one` });
    return b.option('keep-within', {
      type: 'string',
      requiresArg: true,
      describe: "Keep every backup made within DURATION of the newest one (per source name), as restic's --keep-within: e.g. 30d, 12h, 1y2m (y years, m months, d days, h hours)",
    });
  },
  run: async (args) => {
    const config = loadContext(args);
    const policy = keepPolicy(args);
    const usePolicy = hasPolicy(policy);
    const gens = args.generation ?? [];
    const sources = { args: args.caps ?? [], stdin: stdinDashes(['e', 'enumerate-shares', 'cap-file', 'g', 'generation']) > 0, files: ([] as string[]).concat(args['cap-file'] ?? []) };
    const capsGiven = sources.args.length > 0 || sources.stdin || sources.files.length > 0;
    if (usePolicy && (capsGiven || gens.length)) throw new UsageError('--keep-* policies choose the backups themselves: give no caps and no -g with them');
    if (args['enumerate-only'] && args['enumerate-shares'] === undefined) throw new UsageError('-n/--enumerate-only needs -e/--enumerate-shares');
    if (args['enumerate-shares']?.startsWith('URI:')) throw new UsageError('-e/--enumerate-shares takes a FILE (or - for stdout), not a cap; give the caps after it, or use --cap-file');
    const dbPath = required(config.source.entry_cache.path, 'source.entry_cache.path', 'cleanup');
    // Caps are read (and garbage refused) before the lock is taken. None given, and no -g or
    // policy: they come on stdin.
    const caps = usePolicy || (!capsGiven && gens.length) ? [] : capsFromInput(capsGiven ? sources : { args: [], stdin: true, files: [] }, 'cleanup', { dirs: true });
    // No stop: a signal ends cleanup as it would any program (what the cache had not committed is rolled back).
    const needs = { lock: !args['dry-run'], cache: { mode: 'write', missing: 'error', command: 'cleanup', verb: 'clean up', path: dbPath } } as const;
    return withSession(config, needs, async (s) => {
      const cache = s.cache!;
      const all = cache.listBackups();
      const chosen = chooseBackups(all, usePolicy ? policy : caps, dbPath);
      const known = new Set([...all.map((b) => b.generation), ...cache.danglingGenerations()]);
      for (const g of gens) if (!known.has(g)) throw new UsageError(`-g ${g}: no such generation in ${dbPath}`);
      if (!chosen.length && !gens.length) {
        await out('nothing to forget');
        return EXIT.OK;
      }
      const plan = planCleanup(cache, { backups: chosen, generations: gens, upTo: Boolean(args['up-to']) });
      const needClient = args['enumerate-shares'] !== undefined || (!args['dry-run'] && !args['enumerate-only'] && config.destination.result.append_to_lafs_dir);
      const client = needClient ? s.openClient() : undefined;
      if (args['enumerate-shares'] !== undefined) await enumerateShares(client!, plan, args['enumerate-shares']);
      if (args['enumerate-only']) return EXIT.OK;
      const verb = args['dry-run'] ? 'would forget' : 'forgetting';
      const lines = plan.backups.map((b) => `${verb} backup ${JSON.stringify(b.name)}, generation ${b.generation}, finished ${isoTime(b.ts)}`);
      const gensText = plan.upTo ? `generations up to ${plan.max}` : `generation${plan.generations.length > 1 ? 's' : ''} ${plan.generations.join(', ')}`;
      lines.push(`${verb} ${gensText}: ${plan.entries} cache entries`);
      await out(lines.join('\n'));
      if (args['dry-run']) return EXIT.OK;
      await executeCleanup(cache, config, client, plan);
      return EXIT.OK;
    });
  },
});

/** The --keep-* flags as a policy (empty: none given). */
function keepPolicy(args: CleanupArgs): KeepPolicy {
  const policy: KeepPolicy = {};
  for (const k of KEEP) {
    const v = args[`keep-${k}`];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--keep-${k}: expected a whole number ≥ 1, got ${v}`);
    policy[k] = v;
  }
  if (args['keep-within'] !== undefined) {
    const within = parseWithin(String(args['keep-within']));
    if (typeof within === 'string') throw new UsageError(`--keep-within: ${JSON.stringify(String(args['keep-within']))} is not a duration like 30d, 12h or 1y2m: ${within}`);
    policy.within = within;
  }
  return policy;
}

/** The backups to forget: those a policy does not keep (never every backup of a name), or those of the caps given. */
function chooseBackups(all: BackupRow[], by: KeepPolicy | string[], dbPath: string): BackupRow[] {
  if (!Array.isArray(by)) {
    const sel = selectKept(all, by);
    for (const name of new Set(all.map((b) => b.name))) {
      if (!sel.keep.some((b) => b.name === name)) throw new UsageError(`the policy would forget every backup of ${JSON.stringify(name)}; refused`);
    }
    return sel.forget;
  }
  const chosen: BackupRow[] = [];
  for (const cap of by) {
    const rows = all.filter((b) => b.cap === cap);
    if (!rows.length) throw new UsageError(`cleanup: ${redact(cap)} is not a backup in the entry cache ${dbPath}`);
    chosen.push(...rows);
  }
  return chosen;
}

/** -e: the storage indexes only the forgotten backups use, to FILE or (- or nothing) stdout. */
async function enumerateShares(client: TahoeClient, plan: CleanupPlan, target: string): Promise<void> {
  const sis = await sharesOnlyIn(client, plan);
  if (!target || target === '-') await out(sis.join('\n'));
  else writeFileSync(target, sis.length ? `${sis.join('\n')}\n` : '');
}
