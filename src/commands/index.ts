/** Every command, in the order `--help` lists them. */
import type { CommandSpec } from './common.js';
import dumpConfig from './dump-config.js';
import grid from './grid.js';

export const commands: CommandSpec<never>[] = [dumpConfig, grid] as CommandSpec<never>[];
