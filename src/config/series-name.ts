/**
 * A backup's name: what groups the nightly backups of one configured source into a series
 * (retention counts per name, `restore NAME` takes its newest backup, the lafs dir links it
 * under that name). It is `source.name`, or by default a name taken from `source.path` as
 * configured — never from the directory a glob or a symlink leads to that night, which
 * changes every night (`/srv/snapshots/daily.*` is "daily", not "daily.2026-11-21").
 */
import { realpathSync } from 'node:fs';
import * as minimatchModule from 'minimatch';
import { basename } from 'node:path';
import { ConfigError } from '../errors.js';

type MinimatchModule = typeof import('minimatch');
let mm: MinimatchModule | undefined;
/** Loaded only when a name has to be derived or matched (a plain `list` never pays for it). */
// A static import: the package's one-file command carries minimatch (no node_modules of its own).
const minimatch = (): MinimatchModule => (mm ??= minimatchModule);

const hasMagic = (segment: string): boolean => new (minimatch().Minimatch)(segment).hasMagic();

/** The literal text of a glob segment: its wildcards, classes, braces and extglobs removed. */
function literalPart(segment: string): string {
  return segment
    .replace(/[@!?*+]\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\\(.)/g, '$1')
    .replace(/[*?]/g, '');
}

/** Punctuation that only joins a name to what a glob matched (`daily.*`, `home-202?`). */
const JOINERS = /^[\s._~+,@-]+|[\s._~+,@-]+$/g;

/**
 * The default name for a configured `source.path`: its last segment with any glob removed and
 * the joining punctuation trimmed (`/srv/snapshots/daily.*` → "daily", `/srv/current` →
 * "current", `/srv/snapshots/*` → "snapshots"); undefined when nothing is left (`/`, `/*`).
 */
export function defaultName(pattern: string): string | undefined {
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i]!;
    const name = (hasMagic(s) ? literalPart(s) : s).replace(JOINERS, '');
    if (name) return name;
  }
  return undefined;
}

/**
 * Refuses a name that cannot name a series: it must be one link name in a Tahoe directory, read
 * back unchanged on a command line (not a cap, an option, a local path for `diff`), and not end
 * in `@DIGITS`, which `NAME@GENERATION` would read as a generation.
 */
export function checkName(name: string, key: string): void {
  const bad = (why: string) => new ConfigError(`${key}: ${JSON.stringify(name)} cannot name backups: ${why}`);
  if (!name) throw bad('it is empty');
  if (/[/\0]/.test(name)) throw bad('it contains "/"');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) throw bad('it contains a control character');
  if (name.startsWith('.')) throw bad('it starts with "." (diff takes that for a local path)');
  if (name.startsWith('-')) throw bad('it starts with "-" (a command line takes that for an option)');
  if (/^uri:/i.test(name)) throw bad('it starts with "URI:" (a command line takes that for a cap)');
  if (/@\d+$/.test(name)) throw bad('it ends in @DIGITS, which NAME@GENERATION reads as a generation');
  if (Buffer.byteLength(name) > 255) throw bad('it is longer than 255 bytes');
}

/** The name this configuration's backups are recorded and linked under (source.name, else derived). */
export function seriesName(source: { name: string | null; path: string | null }): string {
  if (source.name !== null) {
    checkName(source.name, 'source.name');
    return source.name;
  }
  const name = defaultName(source.path ?? '');
  if (name === undefined) throw new ConfigError(`source.name: no name can be taken from source.path ${JSON.stringify(source.path)}; set source.name`);
  checkName(name, 'source.name (taken from source.path; set it to choose another)');
  return name;
}

/**
 * Whether `dir` (a directory a backup was made of) is what `pattern` (source.path as
 * configured) picks: segment by segment as the glob is resolved, or, for a plain path, the
 * directory it resolves to now.
 */
export function sourceMatches(pattern: string, dir: string): boolean {
  const pat = pattern.split('/').filter((s) => s !== '');
  if (!pat.some(hasMagic)) {
    try {
      return realpathSync(pattern) === dir;
    } catch {
      return false;
    }
  }
  const segs = dir.split('/').filter((s) => s !== '');
  if (segs.length !== pat.length) return false;
  return pat.every((p, i) => (hasMagic(p) ? minimatch().minimatch(segs[i]!, p) : segs[i] === p));
}

/**
 * Backups recorded before names were configurable were named after the directory backed up
 * (the basename of their source). Those whose directory this configuration picks belong to its
 * series: their ids, to be renamed to it.
 */
export function legacyMembers(rows: readonly { id: number; name: string; source: string }[], name: string, pattern: string): number[] {
  return rows.filter((r) => r.name !== name && r.name === basename(r.source) && sourceMatches(pattern, r.source)).map((r) => r.id);
}
