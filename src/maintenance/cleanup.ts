/**
 * `cleanup`: forget backups locally. Their generations' cache rows and their backups rows are
 * deleted — exactly the rows no newer backup used — and they are taken out of the configured
 * result destinations. Nothing on the grid is deleted: the shares stay until their leases
 * expire (or a storage operator removes them, using `-e`).
 *
 * The result destinations are cleaned first (they can fail: the gateway may be down), the
 * cache last, so a failed cleanup can simply be run again.
 */
import { basename } from 'node:path';
import type { BackupRow, EntryCache } from '../cache/db.js';
import { forgetUnreachableListings } from '../cache/trees.js';
import type { Config } from '../config/load.js';
import { pruneResultLines } from '../core/result-file.js';
import { AppError } from '../errors.js';
import { log } from '../log.js';
import { redact } from '../core/redact.js';
import { assertWritableDirCap } from '../tahoe/caps.js';
import type { TahoeClient } from '../tahoe/client.js';
import { isNodeUnit } from '../tahoe/types.js';

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
  /** The backups that stay. */
  kept: BackupRow[];
  entries: number;
}

export function planCleanup(cache: EntryCache, req: CleanupRequest): CleanupPlan {
  const gens = new Set<number>([...req.backups.map((b) => b.generation), ...req.generations]);
  const max = Math.max(...gens);
  const all = cache.listBackups();
  const forgotten = (b: BackupRow) => (req.upTo ? b.generation <= max : gens.has(b.generation));
  const backups = all.filter(forgotten);
  const kept = all.filter((b) => !forgotten(b));
  const generations = req.upTo ? [max] : [...gens].sort((a, b) => a - b);
  // What the cleanup would delete, counted by doing it and rolling back (listing rows keep the
  // rows they stand for: a plain count by generation would overstate it).
  const { entries } = cache.forgetGenerations(generations, req.upTo, true);
  return { generations, upTo: req.upTo, max, backups, kept, entries };
}

/**
 * The root caps whose records go: those of forgotten backups that no kept backup has. Nights
 * with no change make generations with the same root cap; forgetting the older ones must not
 * take the record of the one kept.
 */
export function capsGone(plan: Pick<CleanupPlan, 'backups' | 'kept'>): Set<string> {
  const kept = new Set(plan.kept.map((b) => b.cap));
  return new Set(plan.backups.map((b) => b.cap).filter((c) => !kept.has(c)));
}

/** Storage indexes reachable from `caps` (t=stream-manifest). */
async function storageIndexes(client: TahoeClient, caps: Iterable<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const cap of new Set(caps)) {
    for await (const u of client.manifest(cap)) {
      if (u.type === 'error') throw new AppError(`manifest of ${redact(cap)} failed: ${(u as { message: string }).message}`);
      if (isNodeUnit(u) && u['storage-index']) out.add(u['storage-index']);
    }
  }
  return out;
}

/** Storage indexes only the forgotten backups use: no kept backup reaches them. */
export async function sharesOnlyIn(client: TahoeClient, plan: Pick<CleanupPlan, 'backups' | 'kept'>): Promise<string[]> {
  const gone = capsGone(plan);
  if (!gone.size) return [];
  const only = await storageIndexes(client, gone);
  for (const si of await storageIndexes(client, plan.kept.map((b) => b.cap))) only.delete(si);
  return [...only].sort();
}

/** Removes the lines naming `caps` (their last field) from the result file (under its lock, atomically). */
export async function pruneResultFile(file: string, caps: ReadonlySet<string>): Promise<number> {
  return pruneResultLines(file, (l) => caps.has(l.trim().split(/\s+/).pop() ?? ''));
}

/**
 * Unlinks forgotten backups from the mutable directory: only links that still point to a cap in
 * `gone`. A backup is linked under its name; backups recorded before names were configurable
 * were linked under their directory's basename, so that name is looked at too.
 */
export async function pruneLafsDir(client: TahoeClient, dircap: string, forgotten: BackupRow[], gone: ReadonlySet<string>): Promise<number> {
  const dir = assertWritableDirCap(dircap, 'destination.result.append_to_lafs_dir').text;
  const children = (await client.info(dir)).children ?? {};
  const names = new Set<string>();
  for (const b of forgotten) {
    if (!gone.has(b.cap)) continue;
    for (const name of [b.name, basename(b.source)]) if (children[name]?.ro_uri === b.cap) names.add(name);
  }
  let removed = 0;
  for (const name of names) if (await client.unlink(dir, name)) removed++;
  return removed;
}

export async function executeCleanup(cache: EntryCache, config: Config, client: TahoeClient | undefined, plan: CleanupPlan): Promise<{ entries: number; backups: number }> {
  const gone = capsGone(plan);
  const r = config.destination.result;
  if (r.append_to_file && gone.size) {
    const n = await pruneResultFile(r.append_to_file, gone);
    log.info({ lines: n }, 'removed lines from the result file');
  }
  if (r.append_to_lafs_dir && gone.size) {
    const n = await pruneLafsDir(client!, r.append_to_lafs_dir, plan.backups, gone);
    log.info({ links: n }, 'unlinked from the result directory');
  }
  const forgotten = cache.forgetGenerations(plan.generations, plan.upTo);
  // Directory listings kept for reading backups (cache/trees.ts): those no kept backup reaches go too.
  const listings = forgetUnreachableListings(cache, plan.kept.map((b) => b.cap));
  log.info({ listings }, 'forgot the directory listings no kept backup reaches');
  return forgotten;
}
