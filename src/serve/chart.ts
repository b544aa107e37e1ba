/**
 * The chart of a backup's generations, drawn here as inline SVG (no script, no library): its
 * size on disk over time (a line) and what each night added (bars of new bytes), on one scale.
 */
import { formatBytes } from '../progress.js';

export interface Point {
  /** Unix seconds. */
  time: number;
  bytes: number;
  newBytes: number;
}

const W = 720;
const H = 170;
const PAD = { l: 64, r: 12, t: 12, b: 26 };

export function chartSvg(points: readonly Point[], label: string): string {
  const pts = [...points].sort((a, b) => a.time - b.time);
  if (!pts.length) return '';
  const max = Math.max(1, ...pts.map((p) => Math.max(p.bytes, p.newBytes)));
  const t0 = pts[0]!.time;
  const t1 = pts.at(-1)!.time;
  const span = Math.max(1, t1 - t0);
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (t: number) => (pts.length === 1 ? PAD.l + iw / 2 : PAD.l + ((t - t0) / span) * iw);
  const y = (v: number) => PAD.t + ih - (v / max) * ih;
  const bw = Math.max(2, Math.min(24, (iw / Math.max(1, pts.length)) * 0.6));
  const bars = pts.map((p) => `<rect class="new" x="${(x(p.time) - bw / 2).toFixed(1)}" y="${y(p.newBytes).toFixed(1)}" width="${bw.toFixed(1)}" height="${(PAD.t + ih - y(p.newBytes)).toFixed(1)}"><title>${new Date(p.time * 1000).toISOString().slice(0, 16)}: ${formatBytes(p.newBytes)} new</title></rect>`);
  const line = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.time).toFixed(1)},${y(p.bytes).toFixed(1)}`).join(' ');
  const dots = pts.map((p) => `<circle cx="${x(p.time).toFixed(1)}" cy="${y(p.bytes).toFixed(1)}" r="2.5" class="size"><title>${new Date(p.time * 1000).toISOString().slice(0, 16)}: ${formatBytes(p.bytes)} on disk</title></circle>`);
  const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);
  return (
    `<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">` +
    `<line class="axis" x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}"/>` +
    `<line class="axis" x1="${PAD.l}" y1="${PAD.t}" x2="${W - PAD.r}" y2="${PAD.t}"/>` +
    `<text x="${PAD.l - 6}" y="${PAD.t + 4}" text-anchor="end">${formatBytes(max)}</text>` +
    `<text x="${PAD.l - 6}" y="${PAD.t + ih}" text-anchor="end">0</text>` +
    `<text x="${PAD.l}" y="${H - 6}">${day(t0)}</text>` +
    (pts.length > 1 ? `<text x="${W - PAD.r}" y="${H - 6}" text-anchor="end">${day(t1)}</text>` : '') +
    `<text x="${PAD.l + 8}" y="${PAD.t + 14}">line: size on disk · bars: new that night</text>` +
    bars.join('') +
    `<path class="size" d="${line}"/>` +
    dots.join('') +
    `</svg>`
  );
}
