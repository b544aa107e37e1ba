/**
 * Before a backup does any work: everything the configuration implies that can be wrong is
 * checked, the tool's own state directories exist, and every other file the run will write has
 * a directory it may write to — so a bad setting fails in the first second with one line naming
 * its key, never after an hour of uploading.
 */
import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { required, type Config } from '../config/load.js';
import { ConfigError, describeErrno } from '../errors.js';
import { compileRules, compileSizeRules } from '../scan/filters.js';
import { queueFileState } from '../scan/queue-file.js';
import { assertWritableDirCap } from '../tahoe/caps.js';
import { parseRate } from '../core/ratelimit.js';

/**
 * The tool's own state directory (of the queue, of the cache): created with mode 0700 when
 * missing, whatever the umask (it will hold caps and paths).
 */
export function ensureStateDir(key: string, file: string): void {
  const dir = dirname(file);
  let created: string | undefined;
  try {
    created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created) {
      // mkdir's mode is filtered by the umask; every directory made here gets exactly 0700.
      for (let d = dir; d.length >= created.length; d = dirname(d)) chmodSync(d, 0o700);
    }
  } catch (e) {
    throw new ConfigError(`${key}: cannot create the directory ${dir}: ${describeErrno(e)}`);
  }
}

/** A file the run will write later must have an existing directory it may write to. */
export function assertWritableDir(key: string, file: string): void {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw new ConfigError(`${key}: ${dir} is not a directory`);
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${key}: the directory of ${file} cannot be written to: ${describeErrno(e)}`);
  }
}

export interface Preflight {
  queuePath: string;
  /** source.path as configured (a glob is resolved after the before hook). */
  source: string;
  /** Undefined with --queue-only (no cache, no gateway). */
  dbPath?: string;
}

/** `dryRun`: everything is checked, nothing is created (a dry run writes nothing). */
export function preflight(config: Config, opts: { dryRun?: boolean } = {}): Preflight {
  const op = config.operation;
  const queuePath = required(config.source.queue.path, 'source.queue.path', 'backup');
  const source = required(config.source.path, 'source.path', 'backup');
  const dbPath = op.queue_only ? undefined : required(config.source.entry_cache.path, 'source.entry_cache.path', 'backup');
  compileRules(config.filter);
  compileSizeRules(config.destination.encoding.xz.path_filter);
  parseRate(op.rate_limit.bytes, 'operation.rate_limit.bytes');
  parseRate(op.rate_limit.objects, 'operation.rate_limit.objects');
  const dir = config.destination.result.append_to_lafs_dir;
  if (dir) assertWritableDirCap(dir, 'destination.result.append_to_lafs_dir');
  if (!opts.dryRun) ensureStateDir('source.queue.path', queuePath);
  if (queueFileState(queuePath) === 'other') {
    throw new ConfigError(`source.queue.path: ${queuePath} exists and is not a lafs-backup queue file; refusing to overwrite it`);
  }
  if (dbPath && !opts.dryRun) ensureStateDir('source.entry_cache.path', dbPath);
  const resultFile = config.destination.result.append_to_file;
  if (resultFile && !op.queue_only) assertWritableDir('destination.result.append_to_file', resultFile);
  return { queuePath, source, dbPath };
}
