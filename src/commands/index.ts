/** Every command, in the order `--help` lists them. */
import backup from './backup.js';
import check from './check.js';
import cleanup from './cleanup.js';
import type { CommandSpec } from './common.js';
import dumpConfig from './dump-config.js';
import diff from './diff.js';
import dump from './dump.js';
import find from './find.js';
import grid from './grid.js';
import init from './init.js';
import list from './list.js';
import ls from './ls.js';
import restore from './restore.js';
import serve from './serve.js';
import stats from './stats.js';

export const commands: CommandSpec<never>[] = [
  backup, restore, ls, find, dump, stats, diff, serve, list, check, cleanup, dumpConfig, grid,
  // Setting up: a configuration file where every command looks for one.
  init,
] as CommandSpec<never>[];
