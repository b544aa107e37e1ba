/**
 * `lafs-backup backup`: parses what the user asked, runs the backup (src/backup/run.ts does all
 * of it), and prints the outcome: the root cap (or the JSON summary) on stdout, the summary
 * line and any late problems on stderr.
 */
import { resolve } from 'node:path';
import { planBackup, runBackup, type BackupOutcome, type BackupPlan } from '../backup/run.js';
import { summaryLine } from '../backup/summary.js';
import type { Config } from '../config/load.js';
import { EXIT, UsageError } from '../errors.js';
import { defineCommand, loadContext, selectionOptions, type SelectionArgs } from './common.js';
import { printRecorded } from './output.js';
import { withSession, type Needs } from './session.js';

interface BackupArgs extends SelectionArgs {
  path?: string;
  'queue-only'?: string;
  'reuse-queue'?: string;
  'force-queue-rebuild'?: boolean;
  'disable-deduplication'?: boolean;
  'try-resume'?: boolean;
  'dry-run'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export default defineCommand<BackupArgs>({
  command: 'backup [path]',
  describe: 'Back up PATH (or source.path): build the queue file (phase 1), upload it (phase 2), print the root cap',
  builder: (y) =>
    selectionOptions(y.positional('path', { type: 'string', describe: 'The directory to back up (instead of source.path; no configuration file needed)' }))
      .option('queue-only', { type: 'string', describe: 'Only build the queue file (optionally at PATH); upload nothing', requiresArg: false })
      .option('reuse-queue', { type: 'string', describe: 'Upload the existing queue file (optionally at PATH) as it is', requiresArg: false })
      .option('force-queue-rebuild', { alias: 'f', type: 'boolean', describe: 'Rebuild the queue file even if it could be reused' })
      .option('disable-deduplication', { type: 'boolean', describe: 'Ignore the entry cache: upload everything again' })
      .option('try-resume', { alias: 'r', type: 'boolean', describe: 'Continue the unfinished last generation instead of starting a new one' })
      .option('dry-run', { type: 'boolean', describe: 'Walk the source and ask the cache about everything, then say what would be uploaded and reused: nothing is sent or written, no hook runs' })
      .option('json', { type: 'boolean', describe: 'Print the summary and the root cap as one JSON object on stdout (instead of the cap line and the summary line)' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No summary line on stderr (warnings and errors still)' })
      .conflicts('reuse-queue', 'force-queue-rebuild')
      .conflicts('reuse-queue', 'queue-only')
      .conflicts('dry-run', 'queue-only'),
  run: async (args) => {
    const flags: Record<string, unknown> = {};
    // resolve('') is the current directory: an unset variable must not back up wherever cron started.
    if (args.path === '') throw new UsageError('backup: PATH is empty (an unset variable?); give the directory to back up, or none for source.path');
    if (args.path !== undefined) flags['source.path'] = resolve(args.path);
    if (args['queue-only'] !== undefined) {
      flags['operation.queue_only'] = true;
      if (args['queue-only']) flags['source.queue.path'] = args['queue-only'];
    }
    if (args['reuse-queue'] !== undefined) {
      flags['operation.reuse_queue'] = true;
      if (args['reuse-queue']) flags['source.queue.path'] = args['reuse-queue'];
    }
    if (args['disable-deduplication']) flags['operation.disable_deduplication'] = true;
    if (args['try-resume']) flags['operation.try_resume'] = true;
    const config = loadContext(args, flags);
    const op = config.operation;
    if (op.reuse_queue && args['force-queue-rebuild']) throw new UsageError('--reuse-queue and -f/--force-queue-rebuild cannot be used together');
    if (op.reuse_queue && op.queue_only) throw new UsageError('operation.queue_only and operation.reuse_queue cannot both be set');
    const dryRun = Boolean(args['dry-run']);
    if (dryRun && op.queue_only) throw new UsageError('--dry-run cannot be used with operation.queue_only (--queue-only writes the queue file)');
    const outcome = await backupInSession(config, { forceQueue: Boolean(args['force-queue-rebuild']), dryRun, progress: args.progress });
    // Printed after the backup is recorded: a failed write is a problem line (exit 1), see printRecorded.
    const shown = args.json ? JSON.stringify(outcome.summary) : outcome.cap && config.destination.result.print_to_stdout ? outcome.cap : undefined;
    const unprinted = shown === undefined ? undefined : await printRecorded(shown, outcome.cap !== undefined);
    if (unprinted) {
      outcome.problems.push(unprinted);
      outcome.exitCode = EXIT.FAILURE;
    }
    if (!args.json && !args.quiet) {
      process.stderr.write(`lafs-backup: ${summaryLine(outcome.summary)}\n`);
    }
    for (const p of outcome.problems) process.stderr.write(`lafs-backup: ${p}\n`);
    return outcome.exitCode;
  },
});

/**
 * A whole backup in its session: everything checked before the lock (planBackup), then the
 * session's stop, lock, cache and progress line, the run, and all of it closed (also what
 * bench/upload.js runs in process).
 */
export async function backupInSession(config: Config, opts: { forceQueue: boolean; dryRun: boolean; progress?: boolean }): Promise<BackupOutcome> {
  const plan = planBackup(config, opts.dryRun);
  return withSession(config, backupNeeds(config, plan, opts.dryRun, opts.progress), (s) =>
    runBackup({ config, forceQueue: opts.forceQueue, dryRun: opts.dryRun, progress: s.progress }, plan, s),
  );
}

/**
 * What a backup opens: its stop; the cache, locked and writable (created on the first night),
 * unless --queue-only (neither); for --dry-run the cache read-only, if there is one, and no lock.
 * A backup's outcome says how it ended, an interrupted after hook included (afterStop).
 */
function backupNeeds(config: Config, plan: BackupPlan, dryRun: boolean, progress: boolean | undefined): Needs {
  const path = plan.dbPath ?? null;
  if (dryRun) return { stop: true, progress: { flag: progress }, cache: { mode: 'read', missing: 'skip', command: 'backup', path } };
  return {
    stop: true,
    afterStop: 'return',
    progress: { flag: progress },
    lock: true,
    cache: { mode: 'write', missing: 'create', command: 'backup', path, commitAfter: config.source.entry_cache.commit_after },
  };
}
