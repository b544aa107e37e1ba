/**
 * A queue this run did not build, read whole before anything is uploaded: every line is
 * parsed and its shape checked (scan/queue-shape.ts), and — for a queue reused automatically —
 * every directory it lists is stat'ed (beneath the source, through no symlink) and its ctime
 * fed into the same digest the walk recorded (scan/walk.ts DirDigest). Any directory added,
 * removed, renamed, replaced, chmod'ed or with an entry added, removed or renamed since the
 * walk has another ctime, or is gone: the digests differ and the queue is built again.
 */
import { QueueFileError, readQueue, type QueueTrailer } from '../scan/queue-file.js';
import { encodePath, isDirEntry } from '../scan/queue-codec.js';
import { QueueShape } from '../scan/queue-shape.js';
import { DirDigest } from '../scan/walk.js';
import { SourceStats } from './source-stat.js';

/**
 * Checks the queue file. Throws a QueueFileError (exit 2) for a queue that is not well formed
 * when it is to be used as it is (`fresh` undefined: --reuse-queue); with `fresh` (the walk's
 * records), returns why it cannot be reused — its shape too — or undefined when it is fresh.
 * `check` is called now and then (it throws when the run was stopped).
 */
export async function checkQueue(queuePath: string, root: string, fresh: QueueTrailer['dirs'] | undefined, check: () => void): Promise<string | undefined> {
  const shape = new QueueShape(queuePath);
  const digest = new DirDigest();
  const stats = fresh ? new SourceStats(Buffer.from(root)) : undefined;
  let stale: string | undefined;
  let n = 0;
  try {
    for await (const { entry, lineNo } of readQueue(queuePath)) {
      if ((++n & 1023) === 0) check();
      shape.accept(entry, lineNo);
      if (!stats || stale || !isDirEntry(entry)) continue;
      let st;
      try {
        st = stats.lstat(entry.path);
      } catch {
        st = undefined;
      }
      if (!st?.isDirectory()) stale = `${JSON.stringify(encodePath(entry.path))} is gone or no longer a directory`;
      else digest.add(entry.path, st.ctimeNs);
    }
    shape.end();
  } catch (e) {
    if (fresh && e instanceof QueueFileError) return e.message;
    throw e;
  } finally {
    stats?.close();
  }
  if (!fresh) return undefined;
  if (stale) return stale;
  if (digest.count !== fresh.count || digest.digest() !== fresh.ctimes) return 'a directory changed since the queue was built';
  return undefined;
}
