/**
 * One stop for a command that reads backups: SIGINT/SIGTERM abort its signal (requests in
 * flight are cancelled, walks end at their next step), and the command ends with the signal's
 * one line and 130/143, whatever failed on the way out.
 */
import { InterruptedError } from '../errors.js';

export async function withStop<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const on = (sig: 'SIGINT' | 'SIGTERM') => () => {
    if (!stop.signal.aborted) stop.abort(new InterruptedError(sig));
  };
  const sigint = on('SIGINT');
  const sigterm = on('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  try {
    const r = await fn(stop.signal);
    if (stop.signal.aborted) throw stop.signal.reason;
    return r;
  } catch (e) {
    throw stop.signal.aborted ? stop.signal.reason : e;
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}
