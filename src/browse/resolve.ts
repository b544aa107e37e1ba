/**
 * A BACKUP argument: a directory cap, or the name of a backup in the entry cache (its newest
 * backup), or NAME@GENERATION.
 */
import { existsSync } from 'node:fs';
import type { Config } from '../config/load.js';
import { UsageError } from '../errors.js';
import { assertDirCap, redact } from '../tahoe/caps.js';

export interface ResolvedBackup {
  cap: string;
  /** What to call it in messages: the backup's name, or the cap's redacted tag. */
  label: string;
}

export async function resolveBackup(arg: string, config: Config, what = 'BACKUP'): Promise<ResolvedBackup> {
  if (arg.startsWith('URI:')) return { cap: assertDirCap(arg, what).text, label: redact(arg) };
  const db = config.source.entry_cache.path;
  if (!db || !existsSync(db)) throw new UsageError(`${what}: ${JSON.stringify(arg)} is not a cap, and there is no entry cache to look a backup name up in`);
  const { EntryCache } = await import('../cache/db.js');
  const cache = EntryCache.open(db, { readonly: true });
  try {
    const m = /^(.*)@(\d+)$/.exec(arg);
    const name = m ? m[1]! : arg;
    const rows = cache.listBackups().filter((b) => b.name === name && (!m || b.generation === Number(m[2])));
    const row = rows[rows.length - 1];
    if (!row) throw new UsageError(`${what}: no backup named ${JSON.stringify(arg)} in ${db}`);
    return { cap: row.cap, label: `${row.name}@${row.generation}` };
  } finally {
    cache.close();
  }
}
