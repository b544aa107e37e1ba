/** `lafs-backup restore BACKUP DEST`: get a backup (or a path in it) back, with its metadata. */
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveBackup, type ResolvedBackup } from '../browse/resolve.js';
import { MAX_REVISITED_OPTION, RevisitBudget, treeTotals } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { entryAt } from '../export/dump.js';
import { log } from '../log.js';
import { formatBytes } from '../progress.js';
import { restoreDir, restoreEntry, type RestoreOptions, type RestoreReport } from '../restore/restore.js';
import { backupArguments } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { withSession, type Session } from './session.js';

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
    const { backups, rest } = backupArguments('restore', ['BACKUP', 'DEST'], 2, [args.backup, args.dest], ([] as string[]).concat(args['cap-file'] ?? []));
    if (!rest[0]) throw new UsageError('restore: DEST must be a directory path');
    const config = loadContext(args);
    const revisits = RevisitBudget.fromFlag(args['max-revisited']);
    const backup = await resolveBackup(backups[0]!, config);
    const dest = prepareDest(rest[0], args);
    const dryRun = Boolean(args['dry-run']);
    // One stop for the restore: SIGINT/SIGTERM abort it; queued work is dropped, downloads in
    // flight are cancelled and their temporary files removed; then one line and 130/143.
    const needs = { stop: true, client: true, progress: dryRun ? undefined : { flag: args.progress } };
    return withSession(config, needs, async (s) => {
      const started = Date.now();
      const plan: string[] = [];
      const opts = restoreOptions(s, args, dest, revisits, plan);
      const report = args.path ? await restorePath(s, opts, backup, args.path) : await restoreWhole(s, opts, backup.cap);
      s.progress?.end();
      if (opts.dryRun) await out(plan.join('\n'));
      log.info(report, `restored ${report.files} files (${report.bytes} bytes${report.kept ? `; ${report.kept} already in place` : ''}), ${report.dirs} directories, ${report.symlinks} symlinks into ${dest}`);
      s.stop.check();
      if (!args.quiet) process.stderr.write(`lafs-backup: ${restoreSummary(backup.label, dest, report, opts.dryRun ? plan.length : undefined, Date.now() - started, formatBytes)}\n`);
      return report.troubles ? EXIT.INCOMPLETE : EXIT.OK;
    });
  },
});

/**
 * DEST, absolute and with symlinks resolved: an existing directory (empty unless --force or
 * --dry-run), or created (0700) unless --dry-run.
 */
function prepareDest(given: string, args: RestoreArgs): string {
  const dest = resolve(given);
  if (!existsSync(dest)) {
    if (!args['dry-run']) mkdirSync(dest, { recursive: true, mode: 0o700 });
    return dest;
  }
  const st = lstatSync(dest);
  if (!st.isDirectory() && !(st.isSymbolicLink() && lstatSync(realpathSync(dest)).isDirectory())) throw new UsageError(`DEST ${dest} is not a directory`);
  const real = realpathSync(dest);
  if (readdirSync(real).length && !args.force && !args['dry-run']) throw new UsageError(`DEST ${real} is not empty; use --force to restore into it`);
  return real;
}

/** What the restore is told: the flags, the session's client and stop, where the plan (--dry-run) and the progress counts go. */
function restoreOptions(s: Session, args: RestoreArgs, dest: string, revisits: RevisitBudget, plan: string[]) {
  const { config } = s;
  return {
    client: s.client!,
    dest,
    force: Boolean(args.force),
    replaceTypes: Boolean(args.force) && Boolean(args['replace-type-changes']),
    dryRun: Boolean(args['dry-run']),
    owner: Boolean(args.owner) && process.getuid?.() === 0,
    concurrency: config.operation.concurrency,
    signal: s.signal,
    onPlan: (path: string, kind: string) => plan.push(`${kind === 'dir' ? 'd' : kind === 'symlink' ? 'l' : '-'} ${path}${kind === 'dir' ? '/' : ''}`),
    counts: s.progress ? { objects: 0, bytes: 0 } : undefined,
    revisits,
    // A download that comes back with another size than the listing's is made again as often as a failed request would be.
    retry: { attempts: config.http.interactive_retry.attempts, delays: config.http.interactive_retry.delay },
  } satisfies RestoreOptions;
}

type Options = ReturnType<typeof restoreOptions>;

/** The progress line, with totals from a manifest of what will be restored (read only when shown). */
async function showProgress(s: Session, opts: Options, dircap: string | undefined, single: { size?: number }, rootCounted: boolean): Promise<void> {
  const { progress } = s;
  const counts = opts.counts;
  if (!progress || !counts) return;
  let totals: { objects: number; bytes: number } | undefined = { objects: 1, bytes: single.size ?? 0 };
  if (dircap) {
    totals = await progress.counting('counting', 'entries', (seen) => treeTotals(s.client!, dircap, seen));
    // The manifest lists the directory itself; restoring into DEST does not count it.
    if (totals && !rootCounted) totals.objects -= 1;
  }
  progress.phase({ label: 'restoring', unit: 'entries', bytes: true, totals, read: () => counts });
}

/** The whole backup, into DEST. */
async function restoreWhole(s: Session, opts: Options, cap: string): Promise<RestoreReport> {
  await showProgress(s, opts, cap, {}, false);
  return restoreDir(cap, opts);
}

/** --path: one entry of the backup (it lands as DEST/ITS-NAME). */
async function restorePath(s: Session, opts: Options, backup: ResolvedBackup, path: string): Promise<RestoreReport> {
  const segments = path.split('/').filter(Boolean);
  if (!segments.length) throw new UsageError('--path: give a path inside the backup');
  // Names as the grid lists them, or as ls and find print them (escapes decoded), as dump and ls take them.
  const client = s.client!;
  const at = await entryAt({ children: async (cap) => (await client.info(cap)).children ?? {} }, backup.cap, segments);
  if (!at) throw new UsageError(`--path: ${JSON.stringify(path)} is not in the backup ${backup.label}`);
  const { child, names } = at;
  await showProgress(s, opts, child.type === 'dirnode' ? child.ro_uri : undefined, child, true);
  return restoreEntry({ path: names, type: child.type, cap: child.ro_uri, size: child.size, metadata: child.metadata ?? {} }, opts);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The one line a restore ends with on stderr (not with -q). */
export function restoreSummary(label: string, dest: string, r: RestoreReport, planned: number | undefined, ms: number, formatBytes: (n: number) => string): string {
  const secs = `${(ms / 1000).toFixed(1)} s`;
  if (planned !== undefined) return `restore --dry-run of ${JSON.stringify(label)} into ${JSON.stringify(dest)} done in ${secs}: ${plural(planned, 'entry', 'entries')} would be written; nothing was`;
  const parts = [`${plural(r.files, 'file')} (${formatBytes(r.bytes)})`, plural(r.dirs, 'directory', 'directories'), plural(r.symlinks, 'symlink')];
  let line = `restore of ${JSON.stringify(label)} into ${JSON.stringify(dest)} ${r.troubles ? 'INCOMPLETE' : 'done'} in ${secs}: ${parts.join(', ')}`;
  if (r.kept) line += `; ${plural(r.kept, 'file')} already in place`;
  if (r.troubles) line += `; ${plural(r.troubles, 'entry', 'entries')} not restored as the backup says (see the warnings above)`;
  return line;
}
