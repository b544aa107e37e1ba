/**
 * `lafs-backup backup`: phase 1 builds the queue file, phase 2 uploads it, the root cap is
 * printed (or the JSON summary), and the hooks run around it all.
 *
 * Order: configuration checks, the cache lock, before_backup, the source (a glob is resolved
 * after the hook, which may have made the snapshot it matches), the two phases, the result
 * (stdout, result file, lafs dir), the summary, after_backup, the lock released.
 */
import { basename } from 'node:path';
import type { EntryCache } from '../cache/db.js';
import type { BackupOutcome } from '../upload/backup.js';
import { required } from '../config/load.js';
import { AppError, EXIT, HookError, InterruptedError, UsageError } from '../errors.js';
import type { HookCommand, HookVars, Outcome, runHook as RunHook } from '../hooks.js';
import { log, oneLine } from '../log.js';
import { defineCommand, loadContext, out } from './common.js';

interface BackupArgs {
  'queue-only'?: string;
  'reuse-queue'?: string;
  'force-queue-rebuild'?: boolean;
  'disable-deduplication'?: boolean;
  'try-resume'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

type HookOptions = Parameters<typeof RunHook>[3];

/** What the after hook is told about how the backup ended. */
function outcomeOf(code: number | undefined, err: unknown): Outcome {
  if (err instanceof HookError) return 'aborted';
  if (err instanceof InterruptedError) return 'interrupted';
  if (err !== undefined) return 'failed';
  return code === EXIT.INCOMPLETE ? 'incomplete' : 'success';
}


export default defineCommand<BackupArgs>({
  command: 'backup',
  describe: 'Back up source.path: build the queue file (phase 1), upload it (phase 2), print the root cap',
  builder: (y) =>
    y
      .option('queue-only', { type: 'string', describe: 'Only build the queue file (optionally at PATH); upload nothing', requiresArg: false })
      .option('reuse-queue', { type: 'string', describe: 'Upload the existing queue file (optionally at PATH) as it is', requiresArg: false })
      .option('force-queue-rebuild', { alias: 'f', type: 'boolean', describe: 'Rebuild the queue file even if it could be reused' })
      .option('disable-deduplication', { type: 'boolean', describe: 'Ignore the entry cache: upload everything again' })
      .option('try-resume', { alias: 'r', type: 'boolean', describe: 'Continue the unfinished last generation instead of starting a new one' })
      .option('json', { type: 'boolean', describe: 'Print the summary and the root cap as one JSON object on stdout (instead of the cap line and the summary line)' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No summary line on stderr (warnings and errors still)' })
      .conflicts('reuse-queue', 'force-queue-rebuild')
      .conflicts('reuse-queue', 'queue-only'),
  run: async (args) => {
    const flags: Record<string, unknown> = {};
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
    const queuePath = required(config.source.queue.path, 'source.queue.path', 'backup');
    const configured = required(config.source.path, 'source.path', 'backup');
    const dbPath = op.queue_only ? undefined : required(config.source.entry_cache.path, 'source.entry_cache.path', 'backup');
    const { StopRequest, validateForBackup } = await import('../upload/backup.js');
    validateForBackup(config);
    const { Progress } = await import('../progress.js');
    const progress = Progress.create(args.progress);

    const stop = new StopRequest();
    const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
      if (stop.signal) return;
      log.warn({ signal }, `${signal}: stopping; what is done is kept in the cache, rerun to finish`);
      stop.request(signal);
    };
    const sigint = () => onSignal('SIGINT');
    const sigterm = () => onSignal('SIGTERM');
    process.on('SIGINT', sigint);
    process.on('SIGTERM', sigterm);
    const { runHook } = await import('../hooks.js');
    const hookOpts: HookOptions = { timeoutS: config.hooks.timeout, onStop: (kill) => stop.onRequest(kill) };
    const vars: HookVars = { source: configured, name: basename(configured) };
    let release: (() => Promise<void>) | undefined;
    let hooked = false;
    let code: number | undefined;
    let failure: unknown;
    try {
      let cache: EntryCache | undefined;
      if (dbPath) {
        const { lockCache } = await import('../cache/lock.js');
        const { EntryCache } = await import('../cache/db.js');
        release = await lockCache(dbPath);
        cache = EntryCache.open(dbPath, { commitAfter: config.source.entry_cache.commit_after });
        vars.generation = cache.nextGeneration(op.try_resume).generation;
      }
      try {
        hooked = true;
        await runHook('before_backup', config.hooks.before_backup, vars, hookOpts);
        if (stop.signal) throw new InterruptedError(stop.signal);
        const { pickSource } = await import('../scan/source.js');
        const source = pickSource(configured);
        vars.source = source;
        vars.name = basename(source);
        const { queueOnly, runBackup } = await import('../upload/backup.js');
        const { readAclsAndCaps, readUserXattrs, metaTrouble } = await import('../meta/entry.js');
        const plan = { config, source, queuePath, forceQueue: Boolean(args['force-queue-rebuild']), stop, readMeta: readAclsAndCaps, readXattrs: readUserXattrs, progress };
        const outcome: BackupOutcome = cache ? await runBackup(plan, cache) : await queueOnly(plan);
        cache?.close();
        cache = undefined;
        progress?.end();
        // Metadata that could not be read (a bad ACL blob, …) also makes the backup incomplete.
        if (metaTrouble.count > 0) outcome.incomplete = true;
        vars.cap = outcome.cap;
        const { backupSummary, summaryLine } = await import('../upload/summary.js');
        const summary = backupSummary(outcome, { name: vars.name, source, queuePath });
        if (args.json) await out(JSON.stringify(summary));
        else if (outcome.cap && config.destination.result.print_to_stdout) await out(outcome.cap);
        if (outcome.cap) {
          const { deliver } = await import('../upload/result.js');
          const { clientFor } = await import('../upload/backup.js');
          const client = clientFor(config);
          try {
            await deliver(config, client, source, outcome.cap);
          } finally {
            await client.close();
          }
        }
        if (!args.json && !args.quiet) process.stderr.write(`lafs-backup: ${summaryLine(summary)}\n`);
        code = outcome.incomplete ? EXIT.INCOMPLETE : EXIT.OK;
        return code;
      } finally {
        cache?.close();
      }
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      progress?.end();
      try {
        if (hooked) await afterHook(config.hooks.after_backup, vars, code, failure, hookOpts, runHook);
      } finally {
        process.off('SIGINT', sigint);
        process.off('SIGTERM', sigterm);
        await release?.();
      }
    }
  },
});

/**
 * Runs after_backup however the backup ended. Its failure is the command's error only when the
 * backup itself went well; otherwise the backup's own error stays the one reported.
 */
async function afterHook(command: HookCommand, vars: HookVars, code: number | undefined, failure: unknown, opts: HookOptions, runHook: typeof RunHook): Promise<void> {
  const outcome = outcomeOf(code, failure);
  const exitCode = failure === undefined ? code : failure instanceof AppError ? failure.exitCode : EXIT.FAILURE;
  try {
    await runHook('after_backup', command, { ...vars, cap: failure === undefined ? vars.cap : undefined, outcome, exitCode, error: failure === undefined ? undefined : oneLine(failure instanceof Error ? failure.message : String(failure)) }, opts);
  } catch (e) {
    if (failure === undefined) throw e;
    log.warn(oneLine((e as Error).message));
  }
}
