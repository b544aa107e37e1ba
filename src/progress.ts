/**
 * Progress on stderr, for people watching a terminal: entries (or objects) and bytes done of
 * the totals when they are known, the rate over the last seconds, and an ETA. Shown when
 * stderr is a terminal or with `--progress`; `--no-progress` hides it. Never on stdout, never
 * in cron mail (stderr is not a terminal there).
 *
 * cli-progress does the terminal work (redrawing one line in place, throttling, hiding the
 * cursor, a plain line now and then when forced onto a pipe); this module decides what the
 * line says. Counters are read when the line is drawn, so the work itself only bumps numbers.
 */
import cliProgress from 'cli-progress';
import { onStderrLine } from './log.js';

export interface Counts {
  /** Entries or objects done. */
  objects: number;
  /** Bytes done (file contents). */
  bytes: number;
}

export interface PhaseSpec {
  /** What is happening: "scanning", "uploading", "restoring", "checking NAME". */
  label: string;
  /** What `objects` counts, plural: "entries", "objects". */
  unit: string;
  /** Known totals; a missing one shows counts without a fraction or ETA. */
  totals?: Partial<Counts>;
  /** Show bytes (not for check, which counts nodes only). */
  bytes?: boolean;
  read: () => Counts;
}

const WINDOW_MS = 10_000;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const count = (n: number) => n.toLocaleString('en-US');

/** Rates over a sliding window of samples taken each time the line is drawn. */
class RateWindow {
  private samples: { t: number; c: Counts; frac: number }[] = [];

  /** Rates per second, and of the fraction done (for the ETA). */
  add(t: number, c: Counts, frac: number): Rates {
    this.samples.push({ t, c: { ...c }, frac });
    while (this.samples.length > 2 && t - this.samples[0]!.t > WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    if (dt < 0.5) return { objects: 0, bytes: 0, frac: 0 };
    return { objects: (c.objects - first.c.objects) / dt, bytes: (c.bytes - first.c.bytes) / dt, frac: (frac - first.frac) / dt };
  }
}

export interface Rates extends Counts {
  /** Of the fraction done, per second. */
  frac: number;
}

/**
 * How much of the work is done, from 0 to 1, when totals are known: the mean of the entry
 * and byte fractions, since time goes both into many small files (per entry) and into big
 * ones (per byte). Undefined without totals.
 */
export function fractionDone(spec: PhaseSpec, c: Counts): number | undefined {
  const t = spec.totals ?? {};
  if (!t.objects || t.objects <= 0) return undefined;
  const o = Math.min(c.objects, t.objects) / t.objects;
  if (!spec.bytes || !t.bytes) return o;
  return (o + Math.min(c.bytes, t.bytes) / t.bytes) / 2;
}

/** The text of the progress line (exported for tests of its wording). */
export function progressLine(spec: PhaseSpec, c: Counts, rate: Rates, elapsedS: number, width: number): string {
  const t = spec.totals ?? {};
  const objTotal = t.objects && t.objects > 0 ? t.objects : undefined;
  const byteTotal = spec.bytes && t.bytes !== undefined ? t.bytes : undefined;
  const objects = objTotal ? Math.min(c.objects, objTotal) : c.objects;
  const bytes = byteTotal !== undefined ? Math.min(c.bytes, byteTotal) : c.bytes;
  let pct = '';
  let bar = '';
  const frac = fractionDone(spec, c);
  if (frac !== undefined) {
    const full = Math.round(frac * 10);
    pct = ` ${Math.floor(frac * 100)}%`;
    bar = ` [${'#'.repeat(full)}${'-'.repeat(10 - full)}]`;
  }
  const parts: string[] = [objTotal ? `${count(objects)}/${count(objTotal)} ${spec.unit}` : `${count(objects)} ${spec.unit}`];
  if (spec.bytes) parts.push(byteTotal !== undefined ? `${formatBytes(bytes)}/${formatBytes(byteTotal)}` : formatBytes(bytes));
  if (spec.bytes && rate.bytes > 0) parts.push(`${formatBytes(rate.bytes)}/s`);
  else if (rate.objects > 0) parts.push(`${count(Math.round(rate.objects))} ${spec.unit}/s`);
  if (frac !== undefined && rate.frac > 0) parts.push(`ETA ${formatDuration((1 - frac) / rate.frac)}`);
  const elapsed = `, ${formatDuration(elapsedS)} so far`;
  // On a narrow terminal the bar goes first, then the time so far, then the line is cut.
  for (const line of [`${spec.label}${pct}${bar} ${parts.join(', ')}${elapsed}`, `${spec.label}${pct} ${parts.join(', ')}${elapsed}`, `${spec.label}${pct} ${parts.join(', ')}`]) {
    if (line.length <= width) return line;
  }
  return `${spec.label}${pct} ${parts.join(', ')}`.slice(0, Math.max(0, width - 1));
}

export class Progress {
  private bar?: cliProgress.SingleBar;
  private spec?: PhaseSpec;
  private rates = new RateWindow();
  private started = 0;

  private constructor(private readonly stream: NodeJS.WriteStream) {}

  /**
   * A progress display if it should be shown: `flag` is --progress (true), --no-progress
   * (false) or neither (undefined: only when stderr is a terminal).
   */
  static create(flag: boolean | undefined, stream: NodeJS.WriteStream = process.stderr): Progress | undefined {
    if (flag === false) return undefined;
    if (flag !== true && !stream.isTTY) return undefined;
    return new Progress(stream);
  }

  /** Starts showing a phase (ending the previous one). */
  phase(spec: PhaseSpec): void {
    this.end();
    this.spec = spec;
    this.rates = new RateWindow();
    this.started = Date.now();
    const tty = Boolean(this.stream.isTTY);
    this.bar = new cliProgress.SingleBar({
      stream: this.stream,
      format: (_o, params) => {
        const now = Date.now();
        const c = this.spec!.read();
        const rate = this.rates.add(now, c, fractionDone(this.spec!, c) ?? 0);
        return progressLine(this.spec!, c, rate, (now - this.started) / 1000, tty ? params.maxWidth : 200);
      },
      fps: 5,
      // Redrawn every tick, so a log line that cleared it is painted over within 200 ms.
      forceRedraw: tty,
      hideCursor: tty,
      // Log lines written meanwhile must wrap as usual; the line itself is cut to the width.
      linewrap: true,
      clearOnComplete: tty,
      gracefulExit: false,
      // Forced onto a pipe or file (--progress): one plain line every few seconds.
      noTTYOutput: !tty,
      notTTYSchedule: 5000,
    });
    this.bar.start(1, 0);
    onStderrLine(tty ? () => this.clearLine() : undefined);
  }

  /** Writes a line to stderr without garbling the progress line (it is redrawn after). */
  aside(line: string): void {
    this.clearLine();
    this.stream.write(line.endsWith('\n') ? line : `${line}\n`);
  }

  /**
   * Runs `count` (which bumps `seen.objects` as it goes) under a "counting" line, for totals
   * that must be learnt before the work starts; a failed count gives no totals.
   */
  async counting<T>(label: string, unit: string, count: (seen: { objects: number }) => Promise<T>): Promise<T | undefined> {
    const seen = { objects: 0 };
    this.phase({ label, unit, read: () => ({ objects: seen.objects, bytes: 0 }) });
    return count(seen).catch(() => undefined);
  }

  /** Clears the drawn line (a terminal only), so a line of text can be written in its place. */
  private clearLine(): void {
    if (this.bar && this.stream.isTTY) this.stream.write('\r\x1b[2K');
  }

  /** Updates the totals of the current phase (they may be learnt after it started). */
  setTotals(totals: Partial<Counts>): void {
    if (this.spec) this.spec.totals = { ...this.spec.totals, ...totals };
  }

  /** Ends the current phase: the line is cleared on a terminal. */
  end(): void {
    if (!this.bar) return;
    onStderrLine(undefined);
    this.bar.stop();
    this.bar = undefined;
    this.spec = undefined;
  }
}
