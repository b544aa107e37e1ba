/** SQLite's and the file system's errors on the entry cache, as one-line CacheErrors naming the file. */
import { AppError, CacheError, errnoCode, EXIT, isMissingBinding, missingBinding } from '../errors.js';

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
  if (code === 'SQLITE_CANTOPEN') return new CacheError(`entry cache ${path} cannot be opened`);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return new CacheError(`entry cache ${path}: no space left on device`);
  return new CacheError(`entry cache ${path}: ${msg.split('\n')[0]}`);
}
