/**
 * What phase 2 reports, as it happens: each stage emits one typed event per thing it did, and
 * nobody else counts. The summary line, `--json` and the progress line are folds over these
 * events (backup/tally.ts), so they can be tested on a list of events without a run.
 *
 * Paths are the queue's (relative to the source, as bytes) and cost nothing to carry; they are
 * for whoever wants them (a log of what changed), the folds need none.
 */

/** How an uploaded file was stored: xz, or raw because of its name (or a rule), size or contents; raw: xz off. */
export type Stored = 'xz' | 'raw-by-name' | 'raw-by-size' | 'raw-by-content' | 'raw';

/** Why an entry of the queue was left out of the backup. */
export type SkipReason = 'vanished' | 'unreadable' | 'changed-type';

export type BackupEvent =
  /**
   * A file whose contents needed no upload: known by path and metadata (`unchanged`), read
   * again and found the same (`rehashed`, only its ctime moved), or a later link of a hard-link
   * group (`linked`, the group's first took care of it). `size`: its bytes on disk.
   */
  | { type: 'file-reused'; path: Buffer; size: number; why: 'unchanged' | 'rehashed' | 'linked' }
  /** A file whose contents were stored already, under another path or by another file of this run: no upload. */
  | { type: 'file-deduplicated'; path: Buffer; size: number }
  /**
   * A file whose contents were uploaded. `streamed`: the bytes of it already reported as read
   * by its upload (`read` events with `upload`), which the progress line showed as they went.
   */
  | { type: 'file-uploaded'; path: Buffer; size: number; stored: Stored; streamed: number }
  /** Uploaded, but not cached: it changed while it was read, or was modified too recently to trust. */
  | { type: 'file-not-cached'; path: Buffer; why: 'changed' | 'recent' }
  /** A file whose mtime is in the future (cached as it is; the run warns once). */
  | { type: 'future-mtime'; path: Buffer }
  | { type: 'symlink-reused'; path: Buffer }
  | { type: 'symlink-uploaded'; path: Buffer }
  | { type: 'dir-reused'; path: Buffer }
  | { type: 'dir-created'; path: Buffer }
  /** A directory answered whole by its listing row: it and its files and symlinks reused, none looked at. */
  | { type: 'dir-listed'; path: Buffer; files: number; symlinks: number; bytes: number }
  | { type: 'skipped'; path: Buffer; why: SkipReason }
  /** Extended metadata of an entry (ACLs, capabilities, xattrs) that could not be read: left out. `path` is absolute (phase 1 reports these too). */
  | { type: 'metadata-unreadable'; path: Buffer }
  /** Bytes of file contents read (hashing, comparing, uploading); `upload`: by an upload's stream, as it goes. */
  | { type: 'read'; bytes: number; upload: boolean }
  /** An upload attempt failed after reading `bytes` of its file: the next attempt reads them again. */
  | { type: 'retry'; bytes: number }
  /** Bytes of an upload body (after compression). */
  | { type: 'sent'; bytes: number }
  /** A file compressed: `in` plaintext bytes became `out` bytes of xz. */
  | { type: 'compressed'; in: number; out: number };

/** Where a stage's events go. It must not throw, and must be cheap: it is called per entry. */
export type EventSink = (e: BackupEvent) => void;
