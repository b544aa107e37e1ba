// Benchmark helpers: generated trees, timing of child processes with their peak RSS.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

// LAFS_BENCH_CLI=FILE: measure another build of the command (an A/B of a setting: one bundle
// changed, the same benches, in turns).
export const CLI = process.env.LAFS_BENCH_CLI ?? new URL('../dist/bin/lafs-backup.js', import.meta.url).pathname;
export const BENCH_DIR = process.env.LAFS_BENCH_DIR ?? '/tmp/lafs-backup-bench';

/** Forgets a bench run's cache and queue in `dir`: the next backup is a first one. */
export function fresh(dir) {
  for (const f of ['cache.db', 'cache.db-wal', 'cache.db-shm', 'queue.txt']) rmSync(join(dir, f), { force: true });
}

/**
 * A tree of `dirs` directories × `files` files (cached between runs by a marker), each file's
 * bytes from `contents(d, f)` (default: 32 bytes of text).
 */
export function generateTree(name, dirs, files, contents = (d, f) => `${d}:${f}:`.padEnd(32, 'x')) {
  const root = join(BENCH_DIR, name);
  const marker = `${root}.done`;
  if (existsSync(marker)) return root;
  const old = new Date(Date.now() - 86400_000);
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${String(d).padStart(4, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) {
      const p = join(dir, `file-${f}.txt`);
      writeFileSync(p, contents(d, f));
      utimesSync(p, old, old);
    }
  }
  writeFileSync(marker, '');
  return root;
}

/** Runs a command; resolves with wall seconds, peak RSS (MiB, polled from /proc) and output. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* exited */
      }
    }, 20);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
      else resolve({ seconds, peakMiB: peakKb / 1024, out, err, code });
    });
  });
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Best-of-n style: runs `fn` n times, returns the run with the median time. */
export async function medianRun(n, fn) {
  const runs = [];
  for (let i = 0; i < n; i++) runs.push(await fn(i));
  runs.sort((a, b) => a.seconds - b.seconds);
  return runs[Math.floor(runs.length / 2)];
}

/** `a()` and `b()` taken in turns, n times each: the median run of each (drift hits both alike). */
export async function interleaved(n, a, b) {
  const ra = [];
  const rb = [];
  for (let i = 0; i < n; i++) {
    ra.push(await a(i));
    rb.push(await b(i));
  }
  const mid = (rs) => [...rs].sort((x, y) => x.seconds - y.seconds)[Math.floor(rs.length / 2)];
  return [mid(ra), mid(rb)];
}

export function fmt(n, digits = 0) {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * The embedded grid in its own process (as a gateway would be): its URL, counters, and stop.
 * `delayMs`: each request is answered no sooner than that after it arrived (`grid --delay-ms`).
 */
export async function startGridProcess({ delayMs = 0 } = {}) {
  const child = spawn(process.execPath, [CLI, 'grid', '--port', '0', '--delay-ms', String(delayMs)], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((ok, fail) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /http:\/\/\S+\/uri/.exec(buf);
      if (m) ok(m[0]);
    });
    child.on('close', () => fail(new Error('grid exited')));
  });
  const base = url.replace(/\/uri$/, '');
  const stats = async () => (await fetch(`${base}/__grid/stats`)).json();
  return { url, stats, stop: () => child.kill('SIGTERM') };
}
