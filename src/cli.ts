#!/usr/bin/env node
/** The `lafs-backup` executable: runs main() and sets the exit code. */
import { hideBin } from 'yargs/helpers';
import { main, report } from './main.js';

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
