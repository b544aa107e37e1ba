/** What the upload stages share: the client, the cache, limits, policies, and the run's counters. */
import type { EntryCache } from '../cache/db.js';
import type { CompressionPolicy } from '../core/compression.js';
import type { TahoeClient } from '../tahoe/client.js';
import type { Child } from '../core/entry.js';
import type { UploadedContents } from './upload.js';
import type { Pool } from '../core/pool.js';
import type { XzSettings } from '../core/xz.js';
import type { TokenBucket } from './ratelimit.js';
import type { EntryStat, SourceStats } from './source-stat.js';
import type { Unhashed } from './same-size.js';

export interface RunStats {
  filesUploaded: number;
  filesReused: number;
  symlinksUploaded: number;
  symlinksReused: number;
  dirsCreated: number;
  dirsReused: number;
  /** Bytes of file contents read for uploads (and for re-hashing). */
  bytesRead: number;
  /** Bytes of regular files dealt with so far, uploaded (counted as read) or reused: progress. */
  bytesDone: number;
  /** Bytes sent to the gateway in upload bodies (after compression). */
  bytesSent: number;
  /** Bytes before and after xz, for the files that were compressed. */
  xzIn: number;
  xzOut: number;
  /** Uploaded files by how they were stored. */
  stored: { xz: number; rawByName: number; rawBySize: number; rawByContent: number; raw: number };
  /** Files whose contents were stored already (found in the content index): no upload. */
  filesDeduplicated: number;
  bytesDeduplicated: number;
  /** Entries of the queue left out of the backup, by reason. */
  skipped: { vanished: number; unreadable: number; changedType: number };
  /** Files uploaded but not cached (changed while read, or modified too recently to trust). */
  notCached: number;
  /** Files whose mtime is in the future (cached; one warning per run). */
  futureMtimes: number;
}

export function emptyRunStats(): RunStats {
  return {
    filesUploaded: 0,
    filesReused: 0,
    symlinksUploaded: 0,
    symlinksReused: 0,
    dirsCreated: 0,
    dirsReused: 0,
    bytesRead: 0,
    bytesDone: 0,
    bytesSent: 0,
    xzIn: 0,
    xzOut: 0,
    stored: { xz: 0, rawByName: 0, rawBySize: 0, rawByContent: 0, raw: 0 },
    filesDeduplicated: 0,
    bytesDeduplicated: 0,
    skipped: { vanished: 0, unreadable: 0, changedType: 0 },
    notCached: 0,
    futureMtimes: 0,
  };
}

/** Queue entries dealt with so far (done, reused or skipped): progress. */
export function entriesDone(s: RunStats): number {
  return s.filesUploaded + s.filesReused + s.filesDeduplicated + s.symlinksUploaded + s.symlinksReused + s.dirsCreated + s.dirsReused + s.skipped.vanished + s.skipped.unreadable + s.skipped.changedType;
}

/**
 * Extended metadata read at upload time (the metadata module's xattrs): undefined when there
 * are none, null when they could not be read (left out this time, not remembered).
 */
export type ReadXattrs = (abs: Buffer, st: { isSymbolicLink(): boolean }) => Record<string, string> | undefined | null;

export interface UploadContext {
  /** The source directory, absolute. */
  root: Buffer;
  /** Each entry's lstat, relative to its directory's descriptor (the queue reader's). */
  source: SourceStats;
  client: TahoeClient;
  /** Undefined with deduplication disabled: nothing is looked up or remembered. */
  cache?: EntryCache;
  /** The file stage (files and symlinks: read, hash, compress, upload). */
  files: Pool;
  /** The directory stage (waits for the children, then mkdir-immutable). */
  dirs: Pool;
  xz: { policy: CompressionPolicy; settings: XzSettings; id: string };
  /** Files being compressed: one per core by default (`encoders`), apart from the uploads. */
  encoders: Pool;
  /** Contents being uploaded, by SHA-256 (base64): a second file with them waits for the first. */
  uploading: Map<string, Promise<UploadedContents>>;
  /** Larger files going up without a pre-hash, by size (backup/same-size.ts). */
  unhashed: Map<number, Set<Unhashed>>;
  /** Larger files are hashed before upload to look their contents up (the content index). */
  prehash: boolean;
  bytes?: TokenBucket;
  stats: RunStats;
  /** A file modified less than this long before it was read is uploaded but not cached. */
  trustNs: bigint;
  readXattrs?: ReadXattrs;
  /** ACLs and capabilities of an entry (meta/entry.ts), when extended metadata is backed up. */
  readMeta?: (abs: Buffer, st: EntryStat) => { caps?: string; acls?: string };
  /**
   * Entries whose ctime is this or newer (ns) changed after the walk that built the queue
   * began, give or take the clock's granularity: their ACLs and capabilities are read again.
   */
  metaSince: bigint;
  /** Files with more than one link, by device and inode: the first one's path and result. */
  hardlinks: Map<string, { path: string; done: Promise<Child | null> }>;
}
