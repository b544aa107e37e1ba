/**
 * An entry of the queue left out of the backup: one warning naming it, one `skipped` event.
 * Only a failure to read that entry itself does this (a SourceError, typed where it happened);
 * its directory goes on without it, and the backup ends incomplete (exit 3).
 */
import type { SourceError } from '../errors.js';
import { log } from '../log.js';
import { showPath } from '../scan/phase1.js';
import { encodePath } from '../scan/queue-codec.js';
import type { EventSink, SkipReason } from './events.js';

/** Why the read failed, as the summary counts it. */
export function skipReason(err: SourceError): SkipReason {
  if (err.errno === 'ENOTREG') return 'changed-type';
  if (err.errno === 'ENOENT' || err.errno === 'EREPLACED') return 'vanished';
  return 'unreadable';
}

/** Leaves the entry at `path` out because reading it failed with `err`. */
export function leaveOut(emit: EventSink, path: Buffer, err: SourceError): null {
  emit({ type: 'skipped', path, why: skipReason(err) });
  log.warn({ path: encodePath(path) }, `${err.message}; skipped`);
  return null;
}

/** Leaves the entry out because it is not there, or not of its kind, any more. */
export function leaveOutChanged(emit: EventSink, path: Buffer, why: 'vanished' | 'changed-type', kind: 'file' | 'symlink' | 'dir'): null {
  emit({ type: 'skipped', path, why });
  const shown = showPath(path);
  const msg = why === 'vanished' ? `${shown} vanished since the queue was built; skipped` : `${shown} is no longer a ${kind === 'dir' ? 'directory' : kind}; skipped (rebuild the queue)`;
  log.warn({ path: encodePath(path) }, msg);
  return null;
}
