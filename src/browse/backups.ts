/**
 * Which backups there are to read, for `find` and `stats` (and a web view): the entry cache's
 * backups rows; and, for root caps the cache does not have (a cache lost, or rebuilt), the
 * lines of the result file and — when there is no cache at all — the links of the lafs dir.
 * A lost cache must not make `find` blind: those records name every backup made.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { pickBackup } from './resolve.js';
import { seriesName, sourceMatches } from '../config/series-name.js';
import type { BackupRow } from '../cache/db.js';
import type { Config } from '../config/load.js';
import { MAX_RESULT_FILE } from '../core/result-file.js';
import { AppError, describeErrno, errnoCode, UsageError } from '../errors.js';
import { log } from '../log.js';
import { redact } from '../core/redact.js';
import { tryParseCap } from '../tahoe/caps.js';
import type { TahoeClient } from '../tahoe/client.js';

export interface BackupRef {
  /** The backup's name (source.name); for a bare cap, its redacted tag. */
  name: string;
  /** Its generation; null when the entry cache does not know it (from the result file, the lafs dir, a cap given). */
  generation: number | null;
  /** When it finished (Unix seconds); null when not known. */
  time: number | null;
  /** The root cap (a secret: never in a message). */
  cap: string;
  from: 'cache' | 'result-file' | 'lafs-dir' | 'argument';
}

/** How a backup is shown: NAME@GENERATION, or NAME and its time for one the cache does not know. */
export function refLabel(b: BackupRef): string {
  if (b.generation !== null) return `${b.name}@${b.generation}`;
  return b.time === null ? b.name : `${b.name}(${new Date(b.time * 1000).toISOString().replace(/\.\d+Z$/, 'Z')})`;
}

export function fromRow(r: BackupRow): BackupRef {
  return { name: r.name, generation: r.generation, time: r.ts, cap: r.cap, from: 'cache' };
}

/** Reads the result file (bounded, never through a symlink): its lines' time, source and cap. */
export function readResultFile(file: string): { time: number | null; source: string; cap: string }[] {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw new AppError(`destination.result.append_to_file: cannot open ${file}: ${errnoCode(e) === 'ELOOP' ? 'it is a symbolic link; refusing to follow it' : describeErrno(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AppError(`destination.result.append_to_file: ${file} is not a regular file`);
    if (st.size > MAX_RESULT_FILE) throw new AppError(`destination.result.append_to_file: ${file} is larger than ${MAX_RESULT_FILE} bytes; not a result file`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
    }
    const out: { time: number | null; source: string; cap: string }[] = [];
    for (const line of buf.subarray(0, n).toString('utf8').split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 3) continue;
      const cap = tryParseCap(fields.at(-1)!);
      if (!cap?.isDir) continue;
      const t = Date.parse(fields[0]!);
      out.push({ time: Number.isNaN(t) ? null : t / 1000, source: line.trim().slice(fields[0]!.length, -fields.at(-1)!.length).trim(), cap: cap.text });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * Every backup known: the cache's rows, then result-file lines of caps the cache does not have
 * (named by the series their source belongs to), then, with no cache rows at all, the lafs dir's
 * links. Newest first: the cache's by generation, the others by time.
 */
export async function knownBackups(config: Config, rows: readonly BackupRow[] | undefined, client: TahoeClient): Promise<BackupRef[]> {
  const known = new Set((rows ?? []).map((r) => r.cap));
  const cached = [...(rows ?? [])].reverse().map(fromRow);
  const others: BackupRef[] = [];
  const file = config.destination.result.append_to_file;
  if (file) {
    const series = seriesOf(config);
    // Each line is a night, also when nights share a root cap (nothing changed).
    for (const l of readResultFile(file)) {
      if (known.has(l.cap)) continue;
      others.push({ name: series(l.source), generation: null, time: l.time, cap: l.cap, from: 'result-file' });
    }
  }
  for (const o of others) known.add(o.cap);
  const lafsDir = config.destination.result.append_to_lafs_dir;
  if (lafsDir && !rows?.length) {
    try {
      const children = (await client.info(lafsDir)).children ?? {};
      for (const [name, c] of Object.entries(children)) {
        if (c.type !== 'dirnode' || !c.ro_uri || known.has(c.ro_uri)) continue;
        known.add(c.ro_uri);
        const t = (c.metadata?.tahoe as { linkmotime?: unknown } | undefined)?.linkmotime;
        others.push({ name, generation: null, time: typeof t === 'number' ? t : null, cap: c.ro_uri, from: 'lafs-dir' });
      }
    } catch (e) {
      // The records above may be enough; the lafs dir is the last resort.
      log.warn(`the lafs dir (destination.result.append_to_lafs_dir) could not be read for backups the entry cache does not know: ${(e as Error).message}`);
    }
  }
  others.sort((a, b) => (b.time ?? 0) - (a.time ?? 0));
  return [...cached, ...others];
}

/** The series a result-file line's source belongs to: this configuration's name when its source.path picks it, else the directory's name. */
function seriesOf(config: Config): (source: string) => string {
  let name: string | undefined;
  try {
    name = config.source.path ? seriesName(config.source) : undefined;
  } catch {
    // no usable name: each line is named after its directory
  }
  return (source) => (name && config.source.path && sourceMatches(config.source.path, source) ? name : basename(source) || source);
}

/**
 * The backups an argument selects among `all` (newest first): a cap (that backup), NAME@GEN
 * (that one), or NAME (every generation of it). None: a usage error naming the argument.
 */
export function selectBackups(all: readonly BackupRef[], arg: string, what = '--backup'): BackupRef[] {
  const cap = /^uri:/i.test(arg) ? tryParseCap(arg) : undefined;
  if (/^uri:/i.test(arg)) {
    if (!cap?.isDir || cap.isVerifier) throw new UsageError(`${what}: ${redact(arg)} is not a directory read cap`);
    const same = all.filter((b) => b.cap === cap.text);
    return same.length ? same : [{ name: redact(cap.text), generation: null, time: null, cap: cap.text, from: 'argument' }];
  }
  const cached = all.filter((b) => b.generation !== null);
  if (/@\d+$/.test(arg)) {
    const rows = cached.map((b) => ({ id: 0, name: b.name, source: '', cap: b.cap, generation: b.generation!, ts: b.time ?? 0, tsCheck: null, checkProblem: null })).reverse();
    const row = pickBackup(rows, arg, what);
    const hit = row && cached.find((b) => b.name === row.name && b.generation === row.generation);
    if (hit) return [hit];
  }
  const named = all.filter((b) => b.name === arg);
  if (!named.length) throw new UsageError(`${what}: no backup named ${JSON.stringify(arg)} (list shows the backups in the entry cache)`);
  return named;
}
