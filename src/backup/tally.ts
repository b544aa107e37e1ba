/**
 * The fold over phase 2's events (backup/events.ts): the counts the summary line, `--json` and
 * the progress line are made of. `Tally.add` is the only place they change; everything read
 * from a tally is a function of the events it was given, in any order.
 */
import type { BackupEvent, Stored } from './events.js';

export class Tally {
  filesUploaded = 0;
  filesReused = 0;
  filesDeduplicated = 0;
  /** Uploaded but not cached (changed while read, or modified too recently to trust). */
  filesNotCached = 0;
  futureMtimes = 0;
  symlinksUploaded = 0;
  symlinksReused = 0;
  dirsCreated = 0;
  dirsReused = 0;
  /** Uploaded files by how they were stored. */
  readonly stored: Record<Stored, number> = { xz: 0, 'raw-by-name': 0, 'raw-by-size': 0, 'raw-by-content': 0, raw: 0 };
  /** Plaintext bytes of the files uploaded. */
  bytesUploaded = 0;
  /** Bytes of the files found by their contents (no upload). */
  bytesDeduplicated = 0;
  /** Bytes of file contents read, hashing and uploading (a retried upload's first reads taken back). */
  bytesRead = 0;
  bytesSent = 0;
  xzIn = 0;
  xzOut = 0;
  readonly skipped = { vanished: 0, unreadable: 0, 'changed-type': 0 };
  /** Entries whose extended metadata could not be read whole (the backup is then incomplete). */
  metadataUnreadable = 0;
  /** Progress: queue entries dealt with, and bytes of regular files dealt with (uploads as they stream). */
  entriesDone = 0;
  bytesDone = 0;

  /** The fold's one step. */
  add(e: BackupEvent): void {
    switch (e.type) {
      case 'file-reused':
        this.filesReused++;
        this.entriesDone++;
        this.bytesDone += e.size;
        return;
      case 'file-deduplicated':
        this.filesDeduplicated++;
        this.bytesDeduplicated += e.size;
        this.entriesDone++;
        this.bytesDone += e.size;
        return;
      case 'file-uploaded':
        this.filesUploaded++;
        this.stored[e.stored]++;
        this.bytesUploaded += e.size;
        this.entriesDone++;
        // What its stream showed already is not counted twice.
        this.bytesDone += e.size - e.streamed;
        return;
      case 'file-not-cached':
        this.filesNotCached++;
        return;
      case 'future-mtime':
        this.futureMtimes++;
        return;
      case 'symlink-reused':
        this.symlinksReused++;
        this.entriesDone++;
        return;
      case 'symlink-uploaded':
        this.symlinksUploaded++;
        this.entriesDone++;
        return;
      case 'dir-reused':
        this.dirsReused++;
        this.entriesDone++;
        return;
      case 'dir-created':
        this.dirsCreated++;
        this.entriesDone++;
        return;
      case 'dir-listed':
        this.dirsReused++;
        this.filesReused += e.files;
        this.symlinksReused += e.symlinks;
        this.entriesDone += 1 + e.files + e.symlinks;
        this.bytesDone += e.bytes;
        return;
      case 'skipped':
        this.skipped[e.why]++;
        this.entriesDone++;
        return;
      case 'metadata-unreadable':
        this.metadataUnreadable++;
        return;
      case 'read':
        this.bytesRead += e.bytes;
        if (e.upload) this.bytesDone += e.bytes;
        return;
      case 'retry':
        this.bytesRead -= e.bytes;
        this.bytesDone -= e.bytes;
        return;
      case 'sent':
        this.bytesSent += e.bytes;
        return;
      case 'compressed':
        this.xzIn += e.in;
        this.xzOut += e.out;
        return;
    }
  }

  /** Entries of the queue phase 2 left out. */
  get skippedEntries(): number {
    return this.skipped.vanished + this.skipped.unreadable + this.skipped['changed-type'];
  }
}

/** The tally of a list of events. */
export function tally(events: Iterable<BackupEvent>): Tally {
  const t = new Tally();
  for (const e of events) t.add(e);
  return t;
}

/**
 * Whether the backup is incomplete (exit 3): the walk that built the queue left entries out
 * (`walkLeftOut`: unreadable, vanished), phase 2 left entries out, or metadata could not be
 * read whole.
 */
export function incomplete(t: Tally, walkLeftOut: number): boolean {
  return walkLeftOut + t.skippedEntries + t.metadataUnreadable > 0;
}

/** What the progress line shows of phase 2: entries and bytes done. */
export function progressCounts(t: Tally): { objects: number; bytes: number } {
  return { objects: t.entriesDone, bytes: t.bytesDone };
}
