/**
 * Where lafs-backup looks when nobody says: the configuration file (`-c`, else
 * `$LAFS_BACKUP_CONFIG`, else `$XDG_CONFIG_HOME/lafs-backup/config.yaml` — `~/.config/…` —,
 * else `/etc/lafs-backup.yaml`; the first that applies is the only one read), and the state
 * directory that holds the queue file and the entry cache by default (`$XDG_STATE_HOME/lafs-backup`,
 * `~/.local/state/lafs-backup`; `/var/lib/lafs-backup` for root). Every command asks here, so
 * `list` after an ad-hoc `backup PATH` finds the backup it made.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ConfigError } from '../errors.js';

export const SYSTEM_CONFIG = '/etc/lafs-backup.yaml';
export const ROOT_STATE_DIR = '/var/lib/lafs-backup';

type Env = Record<string, string | undefined>;

/** An XDG base directory: the variable when it holds an absolute path (the spec ignores others), else HOME/`fallback`. */
function xdg(env: Env, variable: string, fallback: string): string | undefined {
  const v = env[variable];
  if (v && isAbsolute(v)) return v;
  const home = env.HOME;
  return home && isAbsolute(home) ? join(home, fallback) : undefined;
}

/** The per-user configuration file (`$XDG_CONFIG_HOME/lafs-backup/config.yaml`), or undefined without a usable HOME. */
export function userConfigFile(env: Env = process.env): string | undefined {
  const dir = xdg(env, 'XDG_CONFIG_HOME', '.config');
  return dir && join(dir, 'lafs-backup', 'config.yaml');
}

/** Where `init` writes when not told: `$LAFS_BACKUP_CONFIG`, else the per-user file. */
export function initTarget(env: Env = process.env): string {
  if (env.LAFS_BACKUP_CONFIG) return env.LAFS_BACKUP_CONFIG;
  const file = userConfigFile(env);
  if (!file) throw new ConfigError('init: no place to write the configuration: HOME is not an absolute path and XDG_CONFIG_HOME is not set; give one with -c FILE');
  return file;
}

/**
 * The configuration files a command reads: the `-c` files when any are given; else the one
 * `$LAFS_BACKUP_CONFIG` names (it must exist); else the first of the per-user and the system
 * file that exists; else none (the defaults, and what the command line says).
 */
export function configFiles(explicit: readonly string[] | undefined, env: Env = process.env): string[] {
  if (explicit?.length) return [...explicit];
  const named = env.LAFS_BACKUP_CONFIG;
  if (named) {
    if (!existsSync(named)) throw new ConfigError(`LAFS_BACKUP_CONFIG: ${named} does not exist`);
    return [named];
  }
  for (const f of [userConfigFile(env), SYSTEM_CONFIG]) if (f && existsSync(f)) return [f];
  return [];
}

/** The state directory, or undefined when there is none to take (no XDG_STATE_HOME, no usable HOME, not root). */
export function stateDir(env: Env = process.env, euid = process.geteuid?.() ?? -1): string | undefined {
  const v = env.XDG_STATE_HOME;
  if (v && isAbsolute(v)) return join(v, 'lafs-backup');
  if (euid === 0) return ROOT_STATE_DIR;
  const dir = xdg(env, 'XDG_STATE_HOME', join('.local', 'state'));
  return dir && join(dir, 'lafs-backup');
}

/** A gateway's base URL (`http://127.0.0.1:3456`, as --gateway and LAFS_BACKUP_GATEWAY give it) as the /uri endpoint destination.url is. */
export function gatewayUri(base: string): string {
  const trimmed = base.trim().replace(/\/+$/, '');
  return /\/uri$/.test(trimmed) ? trimmed : `${trimmed}/uri`;
}
