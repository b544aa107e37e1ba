/**
 * Where the root cap of a finished backup goes: stdout, a result file (one line
 * `ISO-TIMESTAMP SOURCE-PATH ROOTCAP` appended under a lock, file mode 0600), and a mutable
 * Tahoe directory (linked under the source's basename, replacing an older link of that name).
 */
import { closeSync, fchmodSync, openSync } from 'node:fs';
import { basename } from 'node:path';
import type { Config } from '../config/load.js';
import { withFileLock } from '../core/file-lock.js';
import { AppError, describeErrno } from '../errors.js';
import { writeFullySync } from '../fsutil.js';
import { assertWritableDirCap } from '../tahoe/caps.js';
import type { TahoeClient } from '../tahoe/client.js';

export function resultLine(source: string, cap: string, when = new Date()): string {
  return `${when.toISOString()} ${source} ${cap}\n`;
}

export async function appendResult(file: string, line: string): Promise<void> {
  await withFileLock(file, () => {
    let fd: number;
    try {
      fd = openSync(file, 'a', 0o600);
    } catch (e) {
      throw new AppError(`destination.result.append_to_file: cannot open ${file}: ${describeErrno(e)}`);
    }
    try {
      fchmodSync(fd, 0o600);
      writeFullySync(fd, line);
    } catch (e) {
      throw new AppError(`destination.result.append_to_file: cannot write ${file}: ${describeErrno(e)}`);
    } finally {
      closeSync(fd);
    }
  });
}

/** Delivers the root cap to the configured destinations (stdout is the caller's). */
export async function deliver(config: Config, client: TahoeClient, source: string, cap: string): Promise<void> {
  const r = config.destination.result;
  if (r.append_to_file) await appendResult(r.append_to_file, resultLine(source, cap));
  if (r.append_to_lafs_dir) {
    const dir = assertWritableDirCap(r.append_to_lafs_dir, 'destination.result.append_to_lafs_dir').text;
    await client.link(dir, basename(source), cap);
  }
}
