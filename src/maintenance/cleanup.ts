/**
 * `cleanup`: forget backups locally. Their generations' cache rows and their backups rows are
 * deleted — exactly the rows no newer backup used — and they are taken out of the configured
 * result destinations. Nothing on the grid is deleted: the shares stay until their leases
 * expire (or a storage operator removes them, using `-e`).
 *
 * The result destinations are cleaned first (they can fail: the gateway may be down), the
 * cache last, so a failed cleanup can simply be run again.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { BackupRow, EntryCache } from '../cache/db.js';
import type { Config } from '../config/load.js';
import { AppError, describeErrno } from '../errors.js';
import { log } from '../log.js';
import { assertWritableDirCap, redact } from '../tahoe/caps.js';
import type { TahoeClient } from '../tahoe/client.js';
import { isNodeUnit } from '../tahoe/types.js';
import { withFileLock } from '../core/file-lock.js';

export interface CleanupRequest {
  /** Backups chosen by cap, policy, or generation. */
  backups: BackupRow[];
  /** Generations named with -g (dangling ones included). */
  generations: number[];
  upTo: boolean;
}

export interface CleanupPlan {
  /** The generations to forget (all up to `max` with --up-to). */
  generations: number[];
  upTo: boolean;
  max: number;
  backups: BackupRow[];
  entries: number;
}

export function planCleanup(cache: EntryCache, req: CleanupRequest): CleanupPlan {
  const gens = new Set<number>([...req.backups.map((b) => b.generation), ...req.generations]);
  const max = Math.max(...gens);
  const all = cache.listBackups();
  const backups = req.upTo ? all.filter((b) => b.generation <= max) : all.filter((b) => gens.has(b.generation));
  const generations = req.upTo ? [max] : [...gens].sort((a, b) => a - b);
  // What the cleanup would delete, counted by doing it and rolling back (listing rows keep the
  // rows they stand for: a plain count by generation would overstate it).
  const { entries } = cache.forgetGenerations(generations, req.upTo, true);
  return { generations, upTo: req.upTo, max, backups, entries };
}

/** Storage indexes reachable from `caps` (t=stream-manifest). */
async function storageIndexes(client: TahoeClient, caps: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const cap of caps) {
    for await (const u of client.manifest(cap)) {
      if (u.type === 'error') throw new AppError(`manifest of ${redact(cap)} failed: ${(u as { message: string }).message}`);
      if (isNodeUnit(u) && u['storage-index']) out.add(u['storage-index']);
    }
  }
  return out;
}

/** Storage indexes only the forgotten backups use: no kept backup reaches them. */
export async function sharesOnlyIn(client: TahoeClient, forgotten: BackupRow[], kept: BackupRow[]): Promise<string[]> {
  const gone = await storageIndexes(client, forgotten.map((b) => b.cap));
  const still = await storageIndexes(client, kept.map((b) => b.cap));
  return [...gone].filter((si) => !still.has(si)).sort();
}

/** Removes the lines naming forgotten caps from the result file (under its lock, atomically). */
export async function pruneResultFile(file: string, caps: Set<string>): Promise<number> {
  return withFileLock(file, () => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return 0;
      throw new AppError(`destination.result.append_to_file: cannot read ${file}: ${describeErrno(e)}`);
    }
    const lines = text.split('\n');
    const kept = lines.filter((l) => !caps.has(l.trim().split(/\s+/).pop() ?? ''));
    const removed = lines.length - kept.length;
    if (!removed) return 0;
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, kept.join('\n'), { mode: 0o600 });
    renameSync(tmp, file);
    return removed;
  });
}

/** Unlinks forgotten backups from the mutable directory — only links that still point to them. */
export async function pruneLafsDir(client: TahoeClient, dircap: string, forgotten: BackupRow[]): Promise<number> {
  const dir = assertWritableDirCap(dircap, 'destination.result.append_to_lafs_dir').text;
  const children = (await client.info(dir)).children ?? {};
  let removed = 0;
  for (const b of forgotten) {
    const name = basename(b.source);
    if (children[name]?.ro_uri !== b.cap) continue; // replaced by a newer backup, or renamed
    if (await client.unlink(dir, name)) removed++;
  }
  return removed;
}

export async function executeCleanup(cache: EntryCache, config: Config, client: TahoeClient | undefined, plan: CleanupPlan): Promise<{ entries: number; backups: number }> {
  const caps = new Set(plan.backups.map((b) => b.cap));
  const r = config.destination.result;
  if (r.append_to_file && caps.size) {
    const n = await pruneResultFile(r.append_to_file, caps);
    log.info({ lines: n }, 'removed lines from the result file');
  }
  if (r.append_to_lafs_dir && plan.backups.length) {
    const n = await pruneLafsDir(client!, r.append_to_lafs_dir, plan.backups);
    log.info({ links: n }, 'unlinked from the result directory');
  }
  return cache.forgetGenerations(plan.generations, plan.upTo);
}
