#!/usr/bin/env node
/** The `lafs-backup` executable: runs main() and sets the exit code. */
import { hideBin } from 'yargs/helpers';
import { main, report } from './main.js';

main(hideBin(process.argv)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = report(err);
  },
);
