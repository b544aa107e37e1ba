/**
 * What the stages need of the world outside them, as narrow interfaces (kopia's uploader
 * reaches its repository the same way): the part of the Tahoe client that stores things, and
 * the parts of the entry cache that answer the stages' questions and take their answers. The
 * run passes the real client and cache; `--dry-run` passes stand-ins that send and record
 * nothing (backup/dry-run.ts); the stage tests pass in-memory fakes.
 */
import type { EntryCache } from '../cache/db.js';
import type { TahoeClient } from '../tahoe/client.js';

/** Stores a file's contents: `PUT /uri`. */
export type Uploader = Pick<TahoeClient, 'putFile'>;

/** Creates an immutable directory: `POST /uri?t=mkdir-immutable`. */
export type DirMaker = Pick<TahoeClient, 'mkdirImmutable'>;

/** The content index: contents stored already, by SHA-256, and whether any has a size. */
export type ContentIndex = Pick<EntryCache, 'knownContent' | 'mayKnowSize'>;

/** What the file stage asks and tells the cache. */
export type FileCache = ContentIndex & Pick<EntryCache, 'fileDecision' | 'knownCap' | 'didReuse' | 'didUpload'>;

/** What the directory stage asks and tells the cache. */
export type DirCache = Pick<EntryCache, 'knownCap' | 'knownListing' | 'didReuse' | 'didUpload' | 'didList'>;

/** The cache as phase 2 uses it: both stages' views. */
export type StageCache = FileCache & DirCache;
