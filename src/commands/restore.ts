/** `lafs-backup restore BACKUP DEST`: get a backup (or a path in it) back, with its metadata. */
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { MAX_REVISITED_OPTION } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { log } from '../log.js';
import { defineCommand, loadContext, out } from './common.js';

interface RestoreArgs {
  backup?: string;
  dest?: string;
  'cap-file'?: string | string[];
  path?: string;
  force?: boolean;
  'replace-type-changes'?: boolean;
  'dry-run'?: boolean;
  owner?: boolean;
  'max-revisited'?: number;
  quiet?: boolean;
}

export default defineCommand<RestoreArgs>({
  command: 'restore [backup] [dest]',
  describe:
    'Restore BACKUP (a root cap, a backup name for its newest backup, or NAME@GENERATION) into DEST, with modes, mtimes, ' +
    'ACLs, capabilities, xattrs and (as root) owners. DEST must be empty unless --force',
  builder: (y) =>
    y
      .positional('backup', { type: 'string', describe: 'Root cap, backup name, NAME@GENERATION, or - (a cap on stdin)' })
      .positional('dest', { type: 'string', describe: 'Directory to restore into (created if missing)' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read the root cap from FILE (then give only DEST): keeps it off the command line, where ps shows it' })
      .option('path', { type: 'string', describe: 'Restore only this path inside the backup (it lands as DEST/ITS-NAME)' })
      .option('force', {
        type: 'boolean',
        describe:
          'Restore into a non-empty DEST, replacing files and symlinks in the way (never a directory by a file, or a file by a directory); ' +
          'a file already there as the backup says (size, mtime to the nanosecond, owner) is kept, not downloaded again, and given its metadata',
      })
      .option('replace-type-changes', { type: 'boolean', describe: 'With --force: also replace a directory in the way by a file (deleting its tree), and a file by a directory' })
      .option('dry-run', { type: 'boolean', describe: 'List what would be written; write nothing' })
      .option('owner', { type: 'boolean', default: true, describe: 'Restore owners (as root); --no-owner to skip (files not owned as in the backup lose setuid/setgid bits and capabilities)' })
      .option('max-revisited', MAX_REVISITED_OPTION)
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No summary line on stderr (warnings and errors still)' }),
  run: async (args) => {
    const { backupArguments } = await import('./cap-input.js');
    const { backups, rest } = backupArguments('restore', ['BACKUP', 'DEST'], 2, [args.backup, args.dest], ([] as string[]).concat(args['cap-file'] ?? []));
    if (!rest[0]) throw new UsageError('restore: DEST must be a directory path');
    const config = loadContext(args);
    const { resolveBackup } = await import('../browse/resolve.js');
    const { RevisitBudget } = await import('../browse/tree.js');
    const revisits = RevisitBudget.fromFlag(args['max-revisited']);
    const backup = await resolveBackup(backups[0]!, config);
    let dest = resolve(rest[0]);
    if (existsSync(dest)) {
      const st = lstatSync(dest);
      if (!st.isDirectory() && !(st.isSymbolicLink() && lstatSync(realpathSync(dest)).isDirectory())) throw new UsageError(`DEST ${dest} is not a directory`);
      dest = realpathSync(dest);
      if (readdirSync(dest).length && !args.force && !args['dry-run']) throw new UsageError(`DEST ${dest} is not empty; use --force to restore into it`);
    } else if (!args['dry-run']) mkdirSync(dest, { recursive: true, mode: 0o700 });
    // One stop for the restore: SIGINT/SIGTERM abort it; queued work is dropped, downloads in
    // flight are cancelled and their temporary files removed; then one line and 130/143.
    const { InterruptedError } = await import('../errors.js');
    const stop = new AbortController();
    const onSignal = (sig: 'SIGINT' | 'SIGTERM') => () => {
      if (!stop.signal.aborted) stop.abort(new InterruptedError(sig));
    };
    const sigint = onSignal('SIGINT');
    const sigterm = onSignal('SIGTERM');
    process.on('SIGINT', sigint);
    process.on('SIGTERM', sigterm);
    const { clientFor } = await import('../config/client.js');
    const client = clientFor(config, { signal: stop.signal });
    const { restoreDir, restoreEntry } = await import('../restore/restore.js');
    const { Progress } = await import('../progress.js');
    const progress = args['dry-run'] ? undefined : Progress.create(args.progress);
    const counts = { objects: 0, bytes: 0 };
    const plan: string[] = [];
    const started = Date.now();
    const opts = {
      client,
      dest,
      force: Boolean(args.force),
      replaceTypes: Boolean(args.force) && Boolean(args['replace-type-changes']),
      dryRun: Boolean(args['dry-run']),
      owner: Boolean(args.owner) && process.getuid?.() === 0,
      concurrency: config.operation.concurrency,
      signal: stop.signal,
      onPlan: (path: string, kind: string) => plan.push(`${kind === 'dir' ? 'd' : kind === 'symlink' ? 'l' : '-'} ${path}${kind === 'dir' ? '/' : ''}`),
      counts: progress ? counts : undefined,
      revisits,
      // A download that comes back with another size than the listing's is made again as often as a failed request would be.
      retry: { attempts: config.http.interactive_retry.attempts, delays: config.http.interactive_retry.delay },
    };
    /** Progress totals from a manifest of what will be restored (read only when shown). */
    const showProgress = async (dircap: string | undefined, single: { size?: number }, rootCounted: boolean) => {
      if (!progress) return;
      let totals: { objects: number; bytes: number } | undefined = { objects: 1, bytes: single.size ?? 0 };
      if (dircap) {
        const { treeTotals } = await import('../browse/tree.js');
        totals = await progress.counting('counting', 'entries', (seen) => treeTotals(client, dircap, seen));
        // The manifest lists the directory itself; restoring into DEST does not count it.
        if (totals && !rootCounted) totals.objects -= 1;
      }
      progress.phase({ label: 'restoring', unit: 'entries', bytes: true, totals, read: () => counts });
    };
    try {
      let report;
      if (args.path) {
        const segments = args.path.split('/').filter(Boolean);
        if (!segments.length) throw new UsageError('--path: give a path inside the backup');
        const parent = await client.info(backup.cap, segments.slice(0, -1));
        const child = parent.children?.[segments[segments.length - 1]!];
        if (!child) throw new UsageError(`--path: ${JSON.stringify(args.path)} is not in the backup ${backup.label}`);
        await showProgress(child.type === 'dirnode' ? child.ro_uri : undefined, child, true);
        report = await restoreEntry({ path: segments, type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, opts);
      } else {
        await showProgress(backup.cap, {}, false);
        report = await restoreDir(backup.cap, opts);
      }
      progress?.end();
      if (opts.dryRun) await out(plan.join('\n'));
      log.info(report, `restored ${report.files} files (${report.bytes} bytes${report.kept ? `; ${report.kept} already in place` : ''}), ${report.dirs} directories, ${report.symlinks} symlinks into ${dest}`);
      if (stop.signal.aborted) throw stop.signal.reason;
      if (!args.quiet) process.stderr.write(`lafs-backup: ${restoreSummary(backup.label, dest, report, opts.dryRun ? plan.length : undefined, Date.now() - started, (await import('../progress.js')).formatBytes)}\n`);
      return report.troubles ? EXIT.INCOMPLETE : EXIT.OK;
    } catch (e) {
      // Whatever failed while stopping, the stop is the reason.
      throw stop.signal.aborted ? stop.signal.reason : e;
    } finally {
      process.off('SIGINT', sigint);
      process.off('SIGTERM', sigterm);
      progress?.end();
      await client.close();
    }
  },
});

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The one line a restore ends with on stderr (not with -q). */
export function restoreSummary(label: string, dest: string, r: import('../restore/restore.js').RestoreReport, planned: number | undefined, ms: number, formatBytes: (n: number) => string): string {
  const secs = `${(ms / 1000).toFixed(1)} s`;
  if (planned !== undefined) return `restore --dry-run of ${JSON.stringify(label)} into ${JSON.stringify(dest)} done in ${secs}: ${plural(planned, 'entry', 'entries')} would be written; nothing was`;
  const parts = [`${plural(r.files, 'file')} (${formatBytes(r.bytes)})`, plural(r.dirs, 'directory', 'directories'), plural(r.symlinks, 'symlink')];
  let line = `restore of ${JSON.stringify(label)} into ${JSON.stringify(dest)} ${r.troubles ? 'INCOMPLETE' : 'done'} in ${secs}: ${parts.join(', ')}`;
  if (r.kept) line += `; ${plural(r.kept, 'file')} already in place`;
  if (r.troubles) line += `; ${plural(r.troubles, 'entry', 'entries')} not restored as the backup says (see the warnings above)`;
  return line;
}
