/** Every command, in the order `--help` lists them. */
import backup from './backup.js';
import type { CommandSpec } from './common.js';
import dumpConfig from './dump-config.js';
import grid from './grid.js';

export const commands: CommandSpec<never>[] = [backup, dumpConfig, grid] as CommandSpec<never>[];
