/**
 * A lock on a file shared with other processes (the result file, rewritten by `cleanup` and
 * appended to by `backup`): proper-lockfile's `FILE.lock` directory, stale after 30 s.
 */
import lockfile from 'proper-lockfile';
import { AppError, describeErrno } from '../errors.js';

export async function withFileLock<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, { realpath: false, stale: 30_000, retries: { retries: 50, minTimeout: 20, maxTimeout: 500 } });
  } catch (e) {
    throw new AppError(`cannot lock ${file}: ${describeErrno(e)}`);
  }
  try {
    return await fn();
  } finally {
    await release().catch(() => {});
  }
}
