/**
 * Starting without a manual (issue 26.6): `backup PATH` with no configuration file and a fresh
 * HOME; the gateway from --gateway or LAFS_BACKUP_GATEWAY; the one lookup every command makes
 * (-c, $LAFS_BACKUP_CONFIG, $XDG_CONFIG_HOME/lafs-backup/config.yaml); queue and cache in the
 * state directory; `init` writing a commented, editor-checked configuration and the lafs dir.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { TahoeClient } from '../../src/tahoe/client.js';
import { runCli } from '../support/cli.js';
import { itEmbedded, useGrid } from '../support/grid.js';
import { handToUnprivileged, isRoot, makeTree, tempDir, unprivileged } from '../support/tree.js';

const env = useGrid();
/** The gateway's base URL, as a user types it. */
const base = () => env.url.replace(/\/uri$/, '');
/** A user with nothing set up: a fresh HOME, and none of the XDG variables (empty counts as unset). */
const fresh = (home: string, more: Record<string, string> = {}) => ({ HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '', ...more });

describe('no configuration file needed', () => {
  it('backup PATH with a fresh HOME: queue and cache in ~/.local/state/lafs-backup, and list and restore find the backup', async () => {
    const dir = tempDir();
    const home = join(dir, 'home');
    mkdirSync(home);
    handToUnprivileged(home);
    makeTree(join(dir, 'photos'), { 'a.txt': 'a'.repeat(100), sub: { 'b.txt': 'b' } });
    // An ordinary user (the suite may run as root, whose state directory is /var/lib/lafs-backup).
    const as = { ...unprivileged(), env: fresh(home, { LAFS_BACKUP_GATEWAY: base() }), cwd: dir };
    const r = await runCli(['backup', './photos'], as);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^URI:DIR2-CHK:\S+\n$/);
    const state = join(home, '.local', 'state', 'lafs-backup');
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, 'cache.db')).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'queue.txt')).mode & 0o777).toBe(0o600);
    // Every command makes the same lookup: list shows the backup, named after the directory.
    const list = await runCli(['list', '--json'], as);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).backups).toMatchObject([{ name: 'photos', generation: 1, cap: r.stdout.trim() }]);
    // The gateway by flag instead of the variable, for a command that goes to the grid.
    const back = await runCli(['--gateway', base(), 'restore', 'photos', join(home, 'back')], { ...as, env: fresh(home) });
    expect(back.code, back.stderr).toBe(0);
    expect(readFileSync(join(home, 'back', 'sub', 'b.txt'), 'utf8')).toBe('b');
    // A second ad-hoc backup of the same directory is the next of the series (an option given
    // before PATH takes its one value: PATH is not swallowed as a second pattern).
    const again = await runCli(['backup', '--exclude', '*.tmp', join(dir, 'photos'), '--exclude', 'nothing', '-q'], as);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse((await runCli(['list', '--json'], as)).stdout).backups.map((b: { generation: number }) => b.generation)).toEqual([1, 2]);
  });

  it.skipIf(!isRoot)("root's state directory is /var/lib/lafs-backup, and XDG_STATE_HOME moves anyone's", async () => {
    const dir = tempDir();
    const rootState = YAML.parse((await runCli(['dump-config'], { env: fresh(dir) })).stdout);
    expect(rootState.source.queue.path).toBe('/var/lib/lafs-backup/queue.txt');
    expect(rootState.source.entry_cache.path).toBe('/var/lib/lafs-backup/cache.db');
    const moved = YAML.parse((await runCli(['dump-config'], { env: fresh(dir, { XDG_STATE_HOME: join(dir, 'st') }) })).stdout);
    expect(moved.source.entry_cache.path).toBe(join(dir, 'st', 'lafs-backup', 'cache.db'));
  });

  it('the lookup: -c, else $LAFS_BACKUP_CONFIG, else $XDG_CONFIG_HOME/lafs-backup/config.yaml; the gateway: --gateway over LAFS_BACKUP_GATEWAY over files', async () => {
    const dir = tempDir();
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'lafs-backup'), { recursive: true });
    writeFileSync(join(xdg, 'lafs-backup', 'config.yaml'), 'operation: {concurrency: 3}\ndestination: {url: "http://file.example:1/uri"}\n');
    const named = join(dir, 'named.yaml');
    writeFileSync(named, 'operation: {concurrency: 4}\n');
    const given = join(dir, 'given.yaml');
    writeFileSync(given, 'operation: {concurrency: 5}\n');
    const dump = async (args: string[], e: Record<string, string>) => {
      const r = await runCli([...args, 'dump-config'], { env: fresh(dir, e) });
      expect(r.code, r.stderr).toBe(0);
      return YAML.parse(r.stdout);
    };
    expect((await dump([], { XDG_CONFIG_HOME: xdg })).operation.concurrency).toBe(3);
    expect((await dump([], { XDG_CONFIG_HOME: xdg, LAFS_BACKUP_CONFIG: named })).operation.concurrency).toBe(4);
    expect((await dump(['-c', given], { XDG_CONFIG_HOME: xdg, LAFS_BACKUP_CONFIG: named })).operation.concurrency).toBe(5);
    // Nothing anywhere: the defaults. Without XDG_CONFIG_HOME: ~/.config.
    expect((await dump([], {})).operation.concurrency).toBe(8);
    mkdirSync(join(dir, '.config', 'lafs-backup'), { recursive: true });
    writeFileSync(join(dir, '.config', 'lafs-backup', 'config.yaml'), 'operation: {concurrency: 6}\n');
    expect((await dump([], {})).operation.concurrency).toBe(6);
    expect((await dump([], { XDG_CONFIG_HOME: xdg })).destination.url).toBe('http://file.example:1/uri');
    expect((await dump([], { XDG_CONFIG_HOME: xdg, LAFS_BACKUP_GATEWAY: 'http://env.example:2' })).destination.url).toBe('http://env.example:2/uri');
    expect((await dump(['--gateway', 'http://flag.example:3/'], { XDG_CONFIG_HOME: xdg, LAFS_BACKUP_GATEWAY: 'http://env.example:2' })).destination.url).toBe('http://flag.example:3/uri');
    // What is wrong is one line naming where it came from (exit 2).
    const missing = await runCli(['dump-config'], { env: fresh(dir, { LAFS_BACKUP_CONFIG: join(dir, 'nope.yaml') }) });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`lafs-backup: LAFS_BACKUP_CONFIG: ${join(dir, 'nope.yaml')} does not exist\n`);
    const bad = await runCli(['--gateway', 'ftp://x', 'list'], { env: fresh(dir) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^lafs-backup: --gateway: destination\.url: expected the http:\/\/ or https:\/\/ URL of the gateway's \/uri endpoint, like http:\/\/127\.0\.0\.1:3456\/uri, got "ftp:\/\/x\/uri"\n$/);
    const badEnv = await runCli(['list'], { env: fresh(dir, { LAFS_BACKUP_GATEWAY: 'http://x:99999' }) });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/^lafs-backup: LAFS_BACKUP_GATEWAY: destination\.url: /);
  });

  it('init writes a commented configuration (0600) where the lookup finds it, creates the lafs dir with a gateway, and refuses to overwrite', async () => {
    const dir = tempDir();
    makeTree(join(dir, 'docs'), { 'a.txt': 'a' });
    const e = fresh(dir, { XDG_STATE_HOME: join(dir, 'state') });
    const r = await runCli(['--gateway', base(), 'init', join(dir, 'docs')], { env: e });
    expect(r.code, r.stderr).toBe(0);
    const file = join(dir, '.config', 'lafs-backup', 'config.yaml');
    expect(r.stdout).toBe(`${file}\n`);
    expect(r.stderr).toBe(`lafs-backup: wrote ${file} (mode 0600; it holds the new lafs directory's cap: keep it private)\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    // Editors are pointed at the schema, which is there.
    const schema = /^# yaml-language-server: \$schema=(file:\/\/\S+)$/m.exec(text)![1]!;
    expect(existsSync(fileURLToPath(schema))).toBe(true);
    // Every key is in it, with its description; only what init was given is active.
    expect(text).toMatch(/^ {2}# concurrency: 8$/m);
    expect(text).toContain('# File uploads in flight at once;');
    const active = YAML.parse(text);
    expect(active.source.path).toBe(join(dir, 'docs'));
    expect(active.destination.url).toBe(env.url);
    const dircap = active.destination.result.append_to_lafs_dir as string;
    const client = new TahoeClient({ url: env.url });
    expect((await client.info(dircap)).type).toBe('dirnode');
    // The next backup needs nothing else, and links itself into the new directory.
    const b = await runCli(['backup', '-q'], { env: e });
    expect(b.code, b.stderr).toBe(0);
    expect(Object.keys((await client.info(dircap)).children ?? {})).toEqual(['docs']);
    await client.close();
    const again = await runCli(['init'], { env: e });
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`lafs-backup: init: ${file} exists; refusing to overwrite it (--force replaces it)\n`);
    expect(readFileSync(file, 'utf8')).toBe(text);
    // --force replaces the file but keeps its lafs dir: a new one would leave the backups linked
    // in the old one reachable only through a cap no file holds any more.
    const forced = await runCli(['--gateway', base(), 'init', '--force', join(dir, 'docs')], { env: e });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toBe(`lafs-backup: wrote ${file} (mode 0600; it holds the lafs directory cap it held before: keep it private)\n`);
    expect(YAML.parse(readFileSync(file, 'utf8')).destination.result.append_to_lafs_dir).toBe(dircap);
    // Without a gateway there is no cap to hold; -c says where to write.
    const plain = join(dir, 'etc', 'lafs-backup.yaml');
    const p = await runCli(['init', '-c', plain], { env: e });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).toBe(`lafs-backup: wrote ${plain} (mode 0600)\n`);
    expect(YAML.parse(readFileSync(plain, 'utf8'))).toBeNull();
  });
  itEmbedded('init where it cannot write: one line naming the place and the cause, exit 2, and no lafs dir made for nothing', async () => {
    const dir = tempDir();
    // A file where a directory must be: refused as root too (permission bits would not be).
    writeFileSync(join(dir, 'home'), 'not a directory');
    const e = fresh(join(dir, 'home'));
    env.grid.resetStats();
    const r = await runCli(['--gateway', base(), 'init'], { env: e });
    expect(r.stderr).toBe(`lafs-backup: init: cannot write ${join(dir, 'home', '.config', 'lafs-backup', 'config.yaml')}: not a directory (ENOTDIR); give another place with -c FILE\n`);
    expect(r.code).toBe(2);
    // The mutable directory would have been made, its cap then lost with the file that was to hold it.
    expect(env.grid.stats.mkdir).toBe(0);
  });

  it('an empty PATH (an unset variable in a script) is a usage error, not the current directory', async () => {
    // `backup "$SNAPSHOT"` with SNAPSHOT unset backed up the directory cron started in (HOME).
    const dir = tempDir();
    makeTree(join(dir, 'cwd'), { 'private.txt': 'not for the backup' });
    const e = fresh(dir, { XDG_STATE_HOME: join(dir, 'state') });
    const b = await runCli(['--gateway', base(), 'backup', ''], { env: e, cwd: join(dir, 'cwd') });
    expect(b.stderr).toBe('lafs-backup: backup: PATH is empty (an unset variable?); give the directory to back up, or none for source.path\n');
    expect(b.code).toBe(2);
    expect(existsSync(join(dir, 'state'))).toBe(false);
    const i = await runCli(['init', ''], { env: e, cwd: join(dir, 'cwd') });
    expect(i.stderr).toBe('lafs-backup: init: PATH is empty (an unset variable?); give the directory to back up, or none\n');
    expect(i.code).toBe(2);
  });
});
