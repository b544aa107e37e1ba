/**
 * One writer at a time per entry cache: a lock next to the database (`DB.lock`, a directory
 * made by proper-lockfile, refreshed while held). Beside it, `DB.lock-owner` records the
 * holder's pid and host (not inside: proper-lockfile checks that the directory's mtime is the
 * one it set). A lock is stale when its owner is a dead process on this host (a run killed with
 * SIGKILL: the next run may start at once), or when nobody refreshed it for 30 s (a holder on
 * another host, or a reused pid). Released on every normal exit path.
 */
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import lockfile from 'proper-lockfile';
import { AppError, BusyError, describeErrno } from '../errors.js';
import { log } from '../log.js';
import { processAlive } from '../pids.js';

export type Release = () => Promise<void>;

interface Owner {
  pid: number;
  host: string;
}

function readOwner(ownerFile: string): string | undefined {
  try {
    return readFileSync(ownerFile, 'utf8');
  } catch {
    return undefined;
  }
}

/** The owner file's pid and host; undefined when it is not what this tool writes. */
function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (o && Number.isInteger(o.pid) && (o.pid as number) > 0 && typeof o.host === 'string') return { pid: o.pid!, host: o.host };
  } catch {
    // garbage: treated as an unknown owner
  }
  return undefined;
}

/** A lock directory without an owner record for longer than this is an orphan. */
const ORPHAN_MS = 2000;

function lockAge(lockDir: string): number {
  try {
    return Date.now() - statSync(lockDir).mtimeMs;
  } catch {
    return 0;
  }
}

export interface LockTimes {
  /** A lock not refreshed for this long is stale (ms; proper-lockfile's minimum is 2000). */
  staleMs?: number;
  /** How often the holder refreshes it (ms; at most half of staleMs). */
  updateMs?: number;
}

export async function lockCache(dbPath: string, times: LockTimes = {}): Promise<Release> {
  const lockDir = `${dbPath}.lock`;
  const ownerFile = `${dbPath}.lock-owner`;
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(dbPath, {
        realpath: false,
        stale: times.staleMs ?? 30_000,
        update: times.updateMs ?? 10_000,
        retries: 0,
        onCompromised: (err) => log.error({ err: err.message }, 'the entry cache lock was lost; another run may be using the cache'),
      });
      // The owner record first (the window in which a kill leaves a lock without one is what
      // ORPHAN_MS covers); then the modes: proper-lockfile's mkdir follows the umask.
      writeFileSync(ownerFile, JSON.stringify({ pid: process.pid, host: hostname() } satisfies Owner), { mode: 0o600 });
      chmodSync(ownerFile, 0o600);
      chmodSync(lockDir, 0o700);
      return async () => {
        rmSync(ownerFile, { force: true });
        await release();
      };
    } catch (e) {
      // Only contention is "busy"; anything else (permissions, a full disk) is a failure.
      if ((e as { code?: string }).code !== 'ELOCKED') throw new AppError(`cannot lock the entry cache ${dbPath} (lock ${lockDir}): ${describeErrno(e)}`);
      const text = readOwner(ownerFile);
      const owner = text ? parseOwner(text) : undefined;
      if (attempt === 0 && owner && owner.host === hostname() && !processAlive(owner.pid) && readOwner(ownerFile) === text) {
        log.warn({ pid: owner.pid }, `removing a stale lock of the entry cache left by process ${owner.pid}, which is gone`);
        rmSync(lockDir, { recursive: true, force: true });
        rmSync(ownerFile, { force: true });
        continue;
      }
      if (attempt === 0 && text === undefined && lockAge(lockDir) > ORPHAN_MS) {
        // A holder writes its owner record right after taking the lock and removes it right
        // before letting go: a lock with no record that is not brand new was left by a run
        // killed in one of those two instants.
        log.warn('removing a lock of the entry cache that has no owner record (a run was killed while taking or releasing it)');
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      const who = owner ? ` (process ${owner.pid} on ${owner.host})` : '';
      throw new BusyError(`another lafs-backup is using the entry cache ${dbPath}${who}; if none is running, its lock ${lockDir} goes stale after 30 s`);
    }
  }
}
