/** SQLite's and the file system's errors on the entry cache, as one-line CacheErrors naming the file. */
import { closeSync, openSync } from 'node:fs';
import { AppError, CacheError, describeErrno, errnoCode, EXIT, isMissingBinding, missingBinding } from '../errors.js';

export function describeDbError(path: string, e: unknown): AppError {
  if (e instanceof AppError) return e;
  if (isMissingBinding(e)) return missingBinding('better-sqlite3');
  const code = (e as { code?: string }).code ?? errnoCode(e) ?? '';
  const msg = (e as Error).message ?? String(e);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || /not a database|malformed/.test(msg)) {
    return new CacheError(`entry cache ${path} is not a valid SQLite database (corrupt?); move it away to start a new one`);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new CacheError(`entry cache ${path} is locked by another process`, EXIT.BUSY);
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES') {
    return new CacheError(`entry cache ${path} cannot be written (read-only file or directory)`);
  }
  if (code.startsWith('SQLITE_CANTOPEN')) return new CacheError(`entry cache ${path} cannot be opened: ${cantOpenReason(path)}`);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return new CacheError(`entry cache ${path}: no space left on device`);
  return new CacheError(`entry cache ${path}: ${msg.split('\n')[0]}`);
}

/**
 * Why SQLite could not open the cache: it does not say (SQLITE_CANTOPEN carries no errno), so
 * ask the system the same question. Opening the file itself names a missing directory or a
 * permission; when that works, what failed was one of the files SQLite opens beside it (its
 * -wal, -shm) — most often because the process may open no more files.
 */
export function cantOpenReason(path: string): string {
  const fds: number[] = [];
  try {
    fds.push(openSync(path, 'r'));
    // SQLite holds the database, its -wal and its -shm open at once.
    for (let i = 0; i < 3; i++) fds.push(openSync('/dev/null', 'r'));
    return 'SQLite gave no reason (the file itself can be opened)';
  } catch (e) {
    if (errnoCode(e) === 'EMFILE' || errnoCode(e) === 'ENFILE') {
      for (const fd of fds.splice(0)) closeSync(fd);
      return `too many open files: the limit is ${openFilesLimit()} (raise it with ulimit -n)`;
    }
    return describeErrno(e);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** The soft limit on open files (ulimit -n), from getrlimit (no file needs opening for it); '?' if unknown. */
function openFilesLimit(): string {
  try {
    const limits = (process.report.getReport() as { userLimits?: { open_files?: { soft?: number | string } } }).userLimits;
    return String(limits?.open_files?.soft ?? '?');
  } catch {
    return '?';
  }
}
