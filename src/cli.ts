#!/usr/bin/env node
/** The `lafs-backup` executable: runs main() and sets the exit code. */
import './core/young-generation.js'; // first: before the bundle's start-up (see there)
import './core/memory.js'; // and the memory policy of every command (see there)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { hideBin } from 'yargs/helpers';
import { main, report } from './main.js';

// undici parses HTTP with llhttp compiled to WebAssembly. By default V8 then recompiles that
// module with its optimising compiler on a background thread, and Node waits for that job at
// exit: ~0.1-0.25 s of one core per run (measured with perf on a 2-core machine), the largest
// fixed cost of a small backup. The baseline compiler's code parses our few, short responses
// just as well. Set before the first request (undici compiles the module lazily).
setFlagsFromString('--liftoff-only');

/**
 * Under an address-space limit (`ulimit -v`), V8 cannot reserve what a WebAssembly memory
 * takes while its trap handler is on (~10 GiB, the guard region that spares bounds checks), so
 * undici's HTTP parser cannot start and every request would fail. Node's flag that turns the
 * trap handler off only works at start-up: under such a limit the command runs itself again
 * with it (explicit bounds checks; our short answers do not notice them), passing signals on
 * and ending as the copy ends. Without a limit nothing changes and nothing is spawned.
 */
function addressSpaceLimited(): boolean {
  if (process.execArgv.includes('--disable-wasm-trap-handler')) return false;
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max address space'));
    const soft = line?.slice('Max address space'.length).trim().split(/\s+/)[0];
    return soft !== undefined && soft !== 'unlimited';
  } catch {
    return false; // not Linux: no /proc, and no such reservation trouble known
  }
}

/** Runs the command in a copy of Node started with `flag`; `fallback` if it cannot start; `settle` when the copy has ended. */
function runAgain(flag: string, fallback: () => void, settle: () => void): void {
  const child = spawn(process.execPath, [flag, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, () => child.kill(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  const done = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
  child.on('error', () => {
    done();
    fallback();
  });
  child.on('exit', (code, signal) => {
    done();
    settle();
    if (signal) process.kill(process.pid, signal);
    else process.exitCode = code ?? 1;
  });
}

/**
 * Runs the command and sets the exit code. If the event loop empties while the command has not
 * finished, a promise was never settled: that is a bug, and it must not look like success.
 */
function start(): void {
  let settled = false;
  const run = (): void => {
    main(hideBin(process.argv)).then(
      (code) => {
        settled = true;
        process.exitCode = code;
      },
      (err: unknown) => {
        settled = true;
        process.exitCode = report(err);
      },
    );
  };
  if (addressSpaceLimited()) runAgain('--disable-wasm-trap-handler', run, () => (settled = true));
  else run();
  process.on('beforeExit', () => {
    if (!settled) {
      settled = true;
      process.exitCode = report(new Error('the command stopped before finishing (nothing left to wait for)'));
    }
  });
}

start();
