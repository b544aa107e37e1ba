// `npm run bench [-- NAME...]`: runs the benchmarks and prints figures with ratios against
// baselines measured in the same run. Benchmarks are never part of `npm test`.
import { fmt } from './lib.js';

// `unchanged-1m` (a million entries, many minutes) only when named.
const all = ['queue', 'upload', 'unchanged', 'least-work', 'restore', 'dump'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : all;

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

for (const name of wanted) {
  const mod = await import(`./${name}.js`);
  const r = await mod.bench();
  console.log(`\n## ${r.title}\n`);
  console.log(table(r.header, r.rows));
  console.log('');
  for (const [label, value, target] of r.ratios) console.log(`  ${label}: ${fmt(value, 2)}${target ? `   (${target})` : ''}`);
}
