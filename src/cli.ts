#!/usr/bin/env node
/** The `lafs-backup` executable: runs main() and sets the exit code. */
import { setFlagsFromString } from 'node:v8';
import { hideBin } from 'yargs/helpers';
import { main, report } from './main.js';

// undici parses HTTP with llhttp compiled to WebAssembly. By default V8 then recompiles that
// module with its optimising compiler on a background thread, and Node waits for that job at
// exit: ~0.1-0.25 s of one core per run (measured with perf on a 2-core machine), the largest
// fixed cost of a small backup. The baseline compiler's code parses our few, short responses
// just as well. Set before the first request (undici compiles the module lazily).
setFlagsFromString('--liftoff-only');

let settled = false;
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
// If the event loop empties while the command has not finished, a promise was never settled:
// that is a bug, and it must not look like success.
process.on('beforeExit', () => {
  if (!settled) {
    settled = true;
    process.exitCode = report(new Error('the command stopped before finishing (nothing left to wait for)'));
  }
});
