/** A child process's peak resident memory, as the kernel keeps it (VmHWM in /proc/PID/status). */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface PeakWatch {
  /** The highest VmHWM seen so far, in KiB. */
  readonly kib: () => number;
  /** Stops polling; the peak in MiB. */
  readonly stop: () => number;
}

/**
 * Polls `child`'s VmHWM every `everyMs` (the kernel's own high-water mark, so a peak between two
 * polls is not missed unless the process exits first). `over`: called once the peak passes it
 * (KiB), e.g. to kill a run that is already a failure.
 */
export function watchPeak(child: ChildProcess, everyMs = 10, over?: { kib: number; then: () => void }): PeakWatch {
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
      if (over && peak > over.kib) over.then();
    } catch {
      // exited meanwhile
    }
  }, everyMs);
  return {
    kib: () => peak,
    stop: () => {
      clearInterval(poll);
      return peak / 1024;
    },
  };
}
