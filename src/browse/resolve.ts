/**
 * A BACKUP argument: a directory cap, or the name of a backup in the entry cache (its newest
 * backup: the highest generation, whatever the clock said), or NAME@GENERATION.
 *
 * `X@N` always reads as generation N of X. New names never end in @DIGITS (config/series-name.ts), but
 * a cache may hold older backups named after directories that did (`snap@2`): `snap@2` then
 * names that backup only when no backup "snap" has generation 2; when both exist it is
 * refused as ambiguous, and `snap@2@GEN` (or the cap) says which.
 */
import { existsSync } from 'node:fs';
import { EntryCache, type BackupRow } from '../cache/db.js';
import type { Config } from '../config/load.js';
import { redact } from '../core/redact.js';
import { UsageError } from '../errors.js';
import { assertDirCap } from '../tahoe/caps.js';

export interface ResolvedBackup {
  cap: string;
  /** What to call it in messages: the backup's name and generation, or the cap's redacted tag. */
  label: string;
}

/** The backup `arg` names among `rows` (ordered by generation); undefined when none. */
export function pickBackup(rows: readonly BackupRow[], arg: string, what = 'BACKUP'): BackupRow | undefined {
  const newest = (name: string) => rows.filter((b) => b.name === name).at(-1);
  const m = /^(.*)@(\d+)$/.exec(arg);
  if (!m) return newest(arg);
  const exact = rows.find((b) => b.name === m[1] && b.generation === Number(m[2]));
  const literal = newest(arg);
  if (exact && literal) {
    throw new UsageError(
      `${what}: ${JSON.stringify(arg)} is ambiguous: generation ${m[2]} of ${JSON.stringify(m[1])}, or the backups named ${JSON.stringify(arg)} ` +
        `(for those give ${arg}@GENERATION; \`list\` shows both)`,
    );
  }
  return exact ?? literal;
}

export async function resolveBackup(arg: string, config: Config, what = 'BACKUP'): Promise<ResolvedBackup> {
  if (/^uri:/i.test(arg)) return { cap: assertDirCap(arg, what).text, label: redact(arg) };
  const db = config.source.entry_cache.path;
  if (!db || !existsSync(db)) throw new UsageError(`${what}: ${JSON.stringify(arg)} is not a cap, and there is no entry cache to look a backup name up in`);
  // Read-only: a cache on a disk mounted read-only (disaster recovery) must still name backups.
  const cache = EntryCache.open(db, { readonly: true });
  try {
    const row = pickBackup(cache.listBackups(), arg, what);
    if (!row) throw new UsageError(`${what}: no backup named ${JSON.stringify(arg)} in ${db}`);
    return { cap: row.cap, label: `${row.name}@${row.generation}` };
  } finally {
    cache.close();
  }
}
