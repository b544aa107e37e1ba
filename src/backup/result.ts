/**
 * Where the root cap of a finished backup goes: stdout (the caller's), a result file (one line
 * `ISO-TIMESTAMP SOURCE-PATH ROOTCAP` appended under a lock, file mode 0600; core/result-file.ts),
 * and a mutable Tahoe directory, linked under the backup's name.
 *
 * The link replaces an older one of that name only when the older one is a backup of this
 * series (per this entry cache): two sources that share a name and a lafs dir must not silently
 * replace each other's link, so the second is refused in one line and its backup stays recorded.
 */
import type { Config } from '../config/load.js';
import { appendResultLine } from '../core/result-file.js';
import { AppError } from '../errors.js';
import { assertWritableDirCap } from '../tahoe/caps.js';
import type { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';

export function resultLine(source: string, cap: string, when = new Date()): string {
  return `${when.toISOString()} ${source} ${cap}\n`;
}

export interface Delivered {
  /** The backup's name: the link's name in the lafs dir. */
  name: string;
  /** The directory backed up: the result line's SOURCE-PATH. */
  source: string;
  cap: string;
}

/**
 * Delivers the root cap to the configured destinations (stdout is the caller's). `ours`: the
 * caps of this series' backups in the entry cache (this one's included).
 */
export async function deliver(config: Config, client: TahoeClient, b: Delivered, ours: ReadonlySet<string>): Promise<void> {
  const r = config.destination.result;
  if (r.append_to_file) await appendResultLine(r.append_to_file, resultLine(b.source, b.cap));
  if (r.append_to_lafs_dir) await linkInto(client, assertWritableDirCap(r.append_to_lafs_dir, 'destination.result.append_to_lafs_dir').text, b, ours);
}

async function linkInto(client: TahoeClient, dir: string, b: Delivered, ours: ReadonlySet<string>): Promise<void> {
  const taken = () =>
    new AppError(
      `destination.result.append_to_lafs_dir: ${JSON.stringify(b.name)} there links something that is not a backup of this source in its entry cache ` +
        '(another source of the same name?); it was left as it is. Give this source its own source.name, or unlink that entry if it is stale',
    );
  const child = (await client.info(dir)).children?.[b.name];
  if (child) {
    const linked = child.ro_uri ?? child.rw_uri;
    if (linked === b.cap) return;
    if (!linked || !ours.has(linked)) throw taken();
    await client.link(dir, b.name, b.cap, true);
    return;
  }
  try {
    // Not there a moment ago: linked only if it still is not (another run may be linking it now).
    await client.link(dir, b.name, b.cap, false);
  } catch (e) {
    if (e instanceof TahoeError && e.tahoeCode === 'conflict') throw taken();
    throw e;
  }
}
