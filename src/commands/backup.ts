/** `lafs-backup backup`: phase 1 builds the queue file, phase 2 uploads it, the root cap is printed. */
import type { BackupOutcome } from '../upload/backup.js';
import { required } from '../config/load.js';
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { defineCommand, loadContext, out } from './common.js';

interface BackupArgs {
  'queue-only'?: string;
  'reuse-queue'?: string;
  'force-queue-rebuild'?: boolean;
  'disable-deduplication'?: boolean;
  'try-resume'?: boolean;
}

function summaryLine(o: BackupOutcome): string {
  const s = o.stats;
  const skipped = s.skipped.vanished + s.skipped.unreadable + s.skipped.changedType + (o.scan ? o.scan.skipped.unreadable + o.scan.skipped.vanished : 0);
  return `files ${s.filesUploaded} uploaded / ${s.filesReused} reused, directories ${s.dirsCreated} created / ${s.dirsReused} reused, ${s.bytesSent} bytes sent, ${skipped} skipped, ${(o.elapsedMs / 1000).toFixed(1)} s`;
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
    const { pickSource } = await import('../scan/source.js');
    const source = pickSource(required(config.source.path, 'source.path', 'backup'));
    const { StopRequest, queueOnly, runBackup, validateForBackup } = await import('../upload/backup.js');
    validateForBackup(config);
    const { readAclsAndCaps, readUserXattrs, metaTrouble } = await import('../meta/entry.js');

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
    try {
      const plan = { config, source, queuePath, forceQueue: Boolean(args['force-queue-rebuild']), stop, readMeta: readAclsAndCaps, readXattrs: readUserXattrs };
      let outcome: BackupOutcome;
      if (op.queue_only) outcome = await queueOnly(plan);
      else {
        const dbPath = required(config.source.entry_cache.path, 'source.entry_cache.path', 'backup');
        const { lockCache } = await import('../cache/lock.js');
        const { EntryCache } = await import('../cache/db.js');
        const release = await lockCache(dbPath);
        try {
          const cache = EntryCache.open(dbPath, { commitAfter: config.source.entry_cache.commit_after });
          try {
            outcome = await runBackup(plan, cache);
          } finally {
            cache.close();
          }
          if (config.destination.result.print_to_stdout) await out(outcome.cap!);
          const { deliver } = await import('../upload/result.js');
          const { clientFor } = await import('../upload/backup.js');
          const client = clientFor(config);
          try {
            await deliver(config, client, source, outcome.cap!);
          } finally {
            await client.close();
          }
        } finally {
          await release();
        }
      }
      log.info({ generation: outcome.generation }, summaryLine(outcome));
      // Metadata that could not be read (a bad ACL blob, …) also makes the backup incomplete.
      return outcome.incomplete || metaTrouble.count > 0 ? EXIT.INCOMPLETE : EXIT.OK;
    } finally {
      process.off('SIGINT', sigint);
      process.off('SIGTERM', sigterm);
    }
  },
});
