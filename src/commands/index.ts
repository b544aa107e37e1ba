/** Every command, in the order `--help` lists them. */
import backup from './backup.js';
import check from './check.js';
import cleanup from './cleanup.js';
import type { CommandSpec } from './common.js';
import dumpConfig from './dump-config.js';
import diff from './diff.js';
import grid from './grid.js';
import init from './init.js';
import list from './list.js';
import ls from './ls.js';
import restore from './restore.js';

export const commands: CommandSpec<never>[] = [backup, restore, ls, diff, list, check, cleanup, dumpConfig, grid] as CommandSpec<never>[];
// Setting up: a configuration file where every command looks for one.
commands.push(init as CommandSpec<never>);
