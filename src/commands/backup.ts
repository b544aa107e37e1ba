/** `lafs-backup backup`: phase 1 builds the queue file, phase 2 uploads it. */
import { required } from '../config/load.js';
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { buildQueue } from '../scan/phase1.js';
import { planQueue } from '../scan/plan.js';
import { pickSource } from '../scan/source.js';
import { defineCommand, loadContext } from './common.js';

interface BackupArgs {
  'queue-only'?: string;
  'reuse-queue'?: string;
  'force-queue-rebuild'?: boolean;
  'disable-deduplication'?: boolean;
  'try-resume'?: boolean;
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
    const source = pickSource(required(config.source.path, 'source.path', 'backup'));

    // --queue-only is a request to build the queue: it always rebuilds.
    const plan = await planQueue({
      queuePath,
      source,
      reuse: op.reuse_queue,
      force: Boolean(args['force-queue-rebuild']) || op.queue_only,
      checkMtime: config.source.queue.check_mtime,
      consumed: () => false,
    });
    log.info({ reason: plan.why }, plan.rebuild ? 'building the queue file' : 'reusing the queue file');
    let incomplete = false;
    if (plan.rebuild) {
      const report = await buildQueue({ source, queuePath, filter: config.filter });
      incomplete = report.skipped.unreadable + report.skipped.vanished > 0;
    }
    if (op.queue_only) return incomplete ? EXIT.INCOMPLETE : EXIT.OK;
    throw new UsageError('phase 2 (upload) is not available yet: use --queue-only');
  },
});
