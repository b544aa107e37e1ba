/** Layered configuration: defaults, -c files in order, flags; errors name the key and the file. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEFAULTS_FILE, loadConfig, readYamlFile, required } from '../../src/config/load.js';
import { configReference } from '../../src/config/reference.js';
import { leafKeys } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tree.js';

function file(dir: string, name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('configuration', () => {
  it('default.yaml documents every key of the schema, each with a comment, and nothing else', () => {
    const doc = YAML.parseDocument(readFileSync(DEFAULTS_FILE, 'utf8'));
    const keys: string[] = [];
    const visit = (node: unknown, prefix: string) => {
      if (YAML.isMap(node)) {
        for (const pair of node.items) {
          const k = `${prefix}${String((pair.key as YAML.Scalar).value)}`;
          const isSection = YAML.isMap(pair.value) && !['options'].includes(String((pair.key as YAML.Scalar).value));
          if (isSection) visit(pair.value, `${k}.`);
          else {
            keys.push(k);
            // The comment before a map's first key belongs to the map node in `yaml`'s model.
            const comment = (pair.key as YAML.Scalar).commentBefore ?? (node.items[0] === pair ? node.commentBefore : undefined);
            expect(comment ?? '', `comment for ${k}`).not.toBe('');
          }
        }
      }
    };
    visit(doc.contents, '');
    expect(keys.sort()).toEqual(leafKeys().sort());
    expect(() => loadConfig()).not.toThrow();
  });

  it('layers -c files in order and flags over them; relative paths follow their file', () => {
    const dir = tempDir();
    const a = file(dir, 'a.yaml', 'source: {path: src, queue: {path: q1}}\noperation: {concurrency: 2}\n');
    const b = file(dir, 'b.yaml', 'source: {queue: {path: /abs/q2}}\nhttp: {retry: {delay: 5}}\n');
    const c = loadConfig({ files: [a, b], flags: { 'operation.concurrency': 7 }, cwd: '/' });
    expect(c.source.path).toBe(join(dir, 'src'));
    expect(c.source.queue.path).toBe('/abs/q2');
    expect(c.operation.concurrency).toBe(7);
    expect(c.http.retry.delay).toEqual([5]);
    expect(c.source.queue.check_mtime).toBe(true);
  });

  it('rejects unknown keys, wrong types, bad YAML — one line naming key and file', () => {
    const dir = tempDir();
    const cases: [string, RegExp][] = [
      ['source: {queue: {pth: x}}', /b\.yaml: unknown key 'source\.queue\.pth'$/],
      ['operation: {concurrency: "4"}', /b\.yaml: operation\.concurrency: expected a whole number from 1 to 256, got "4"$/],
      ['source: nope', /b\.yaml: source: expected a mapping of keys, got "nope"$/],
      ['filter: "-x"', /b\.yaml: filter: expected a list of '\+REGEX' \/ '-REGEX' strings/],
      ['destination: {encoding: {xz: {options: {preset: 12}}}}', /b\.yaml: destination\.encoding\.xz\.options: expected/],
      ['source:\n  path: [\n', /b\.yaml:3:1: invalid YAML: /],
      ['a: 1\na: 2\n', /b\.yaml:2:1: invalid YAML: Map keys must be unique/],
      ['- just\n- a list\n', /b\.yaml: the configuration must be a mapping of keys$/],
    ];
    for (const [text, re] of cases) {
      const b = file(dir, 'b.yaml', text);
      let msg = '';
      try {
        loadConfig({ files: [b] });
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, text).toMatch(re);
      expect(msg).not.toContain('\n');
    }
  });

  it('a missing required key names the key and the command', () => {
    expect(() => required(loadConfig().source.path, 'source.path', 'backup')).toThrow("source.path is required for 'backup' (set it in a configuration file, or give it: lafs-backup backup PATH)");
  });

  it('every duration has a documented range, checked at load time: past 7 days, or a time limit of 0, is one exit-2 line naming file and key', async () => {
    const dir = tempDir();
    // Each was accepted before: past 2³¹ ms a Node timer fires after 1 ms (a hook killed at
    // once, every upload timed out, retries without a pause), and a limit of 0 fails everything.
    const cases: [string, string][] = [
      ['hooks: {timeout: 3000000}', 'hooks.timeout'],
      ['hooks: {timeout: 0}', 'hooks.timeout'],
      ['operation: {timeouts: {updates: 3000000}}', 'operation.timeouts.updates'],
      ['operation: {timeouts: {updates: 0}}', 'operation.timeouts.updates'],
      ['operation: {timeouts: {updates: [1200, 0]}}', 'operation.timeouts.updates'],
      ['http: {retry: {delay: [3000000]}}', 'http.retry.delay'],
      ['http: {retry: {delay: [10, -1]}}', 'http.retry.delay'],
      ['http: {timeout: 3000000}', 'http.timeout'],
      ['http: {timeout: 0}', 'http.timeout'],
      ['http: {timeout: .inf}', 'http.timeout'],
      ['source: {entry_cache: {commit_after: {seconds: 3000000}}}', 'source.entry_cache.commit_after.seconds'],
    ];
    for (const [text, key] of cases) {
      const b = file(dir, 'b.yaml', `${text}\n`);
      let err: unknown;
      try {
        loadConfig({ files: [b] });
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message, text).toMatch(new RegExp(`^${b.replace(/[.]/g, '\\.')}: ${key.replace(/[.]/g, '\\.')}: expected a number of seconds from (0|0\\.01) to 604800 \\(7 days\\)[^\\n]*$`));
    }
    // As the command line says it: one line, exit 2.
    const r = await runCli(['-c', file(dir, 'c.yaml', 'hooks: {timeout: 3000000}\n'), 'dump-config']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`lafs-backup: ${join(dir, 'c.yaml')}: hooks.timeout: expected a number of seconds from 0.01 to 604800 (7 days), got 3000000\n`);
    // The edges of the range are accepted: 7 days, 0.01 s, and waits of 0.
    const edges = file(dir, 'edges.yaml', 'hooks: {timeout: 604800}\noperation: {timeouts: {updates: [0.01, 604800]}}\nhttp: {timeout: 0.01, retry: {delay: [0, 604800]}}\nsource: {entry_cache: {commit_after: {seconds: 0}}}\n');
    const c = loadConfig({ files: [edges] });
    expect(c.hooks.timeout).toBe(604800);
    expect(c.operation.timeouts.updates).toEqual([0.01, 604800]);
    expect(c.http.retry.delay).toEqual([0, 604800]);
    // Each range is in the key's comment, so the README's reference shows it.
    const reference = configReference();
    for (const key of ['hooks.timeout', 'http.timeout', 'http.retry.delay', 'operation.timeouts.updates', 'source.entry_cache.commit_after.seconds']) {
      expect(reference.split('\n').find((l) => l.startsWith(`| \`${key}\``)), key).toMatch(/\b(0|0\.01) to 604800\b/);
    }
  });

  it("an empty or relative HOME is refused for '~' (one exit-2 line naming file and key); nothing is created at /", async () => {
    const dir = tempDir();
    const name = `lb-home-${process.pid}-${Date.now()}.log`;
    const b = file(dir, 'b.yaml', `logging: {file: '~/${name}'}\n`);
    for (const home of ['', 'relative/home']) {
      const r = await runCli(['-c', b, 'dump-config'], { env: { HOME: home } });
      expect(r.code, `HOME=${JSON.stringify(home)}`).toBe(2);
      expect(r.stderr).toBe(`lafs-backup: ${b}: logging.file: cannot expand ~: HOME is ${home ? 'not an absolute path ("relative/home")' : 'empty'}; set HOME or give the path in full\n`);
      expect(existsSync(join('/', name))).toBe(false);
      expect(existsSync(join(dir, 'relative'))).toBe(false);
    }
    // With a HOME, ~ is expanded as before.
    const r = await runCli(['-c', b, 'dump-config'], { env: { HOME: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(YAML.parse(r.stdout).logging.file).toBe(join(dir, name));
  });

  it("a hook's program with a '/' is resolved against its file's directory, a bare name is left to PATH; each hook runs in that directory", () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'etc'));
    const a = file(join(dir, 'etc'), 'a.yaml', "hooks: {before_backup: ['./bin/dump', '--to', 'out'], after_backup: 'logger done'}\n");
    const b = file(dir, 'b.yaml', "hooks: {after_backup: ['logger', 'done']}\n");
    const c = loadConfig({ files: [a, b], cwd: '/' });
    expect(c.hooks.before_backup).toEqual({ run: [join(dir, 'etc', 'bin', 'dump'), '--to', 'out'], cwd: join(dir, 'etc') });
    // A later file replaces a hook whole, and brings its own directory.
    expect(c.hooks.after_backup).toEqual({ run: ['logger', 'done'], cwd: dir });
    expect(loadConfig({ files: [a], cwd: '/' }).hooks.after_backup).toEqual({ run: 'logger done', cwd: join(dir, 'etc') });
    expect(loadConfig({ files: [file(dir, 'home.yaml', "hooks: {before_backup: ['~/bin/x']}\n")] }).hooks.before_backup!.run).toEqual([join(homedir(), 'bin', 'x')]);
  });

  it('dump-config --reveal-caps shows caps, never the user and password of a URL', async () => {
    const dir = tempDir();
    const dircap = 'URI:DIR2:aaaaaaaaaaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
    const a = file(dir, 'a.yaml', `destination: {url: 'http://backup:s3cret@127.0.0.1:3456/uri', result: {append_to_lafs_dir: '${dircap}'}}\n`);
    const hidden = await runCli(['-c', a, 'dump-config']);
    expect(hidden.code).toBe(0);
    expect(hidden.stdout).not.toContain(dircap);
    expect(hidden.stdout).not.toContain('s3cret');
    const revealed = await runCli(['-c', a, 'dump-config', '--reveal-caps']);
    expect(revealed.code).toBe(0);
    expect(YAML.parse(revealed.stdout).destination.result.append_to_lafs_dir).toBe(dircap);
    expect(YAML.parse(revealed.stdout).destination.url).toBe('http://***@127.0.0.1:3456/uri');
    expect(revealed.stdout).not.toContain('s3cret');
    const help = await runCli(['dump-config', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain("A URL's user and password stay hidden (***) even so");
  });

  it('dump-config prints the effective configuration as YAML', async () => {
    const dir = tempDir();
    const a = file(dir, 'a.yaml', 'operation: {concurrency: 3}\n');
    const r = await runCli(['-c', a, 'dump-config']);
    expect(r.code).toBe(0);
    const dumped = YAML.parse(r.stdout);
    expect(dumped.operation.concurrency).toBe(3);
    expect(dumped.destination.url).toBe('http://localhost:3456/uri');
    expect(readYamlFile(a)).toEqual({ operation: { concurrency: 3 } });
  });
});

describe('a FIFO where a configuration or exclude file should be', () => {
  it('is refused in one line (exit 2), never opened for a blocking read', async () => {
    const dir = tempDir();
    const fifo = join(dir, 'config.yaml');
    execFileSync('mkfifo', [fifo]);
    // No writer ever comes: an open for reading would block the command for good.
    const c = await runCli(['-c', fifo, 'dump-config'], { timeoutMs: 20_000 });
    expect(c.code, c.stderr).toBe(2);
    expect(c.stderr).toBe(`lafs-backup: ${fifo}: not a regular file (a FIFO or pipe); give a file\n`);
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'source: {path: /tmp}\n');
    const x = await runCli(['-c', good, 'dump-config', '--exclude-file', fifo], { timeoutMs: 20_000 });
    expect(x.code, x.stderr).toBe(2);
    expect(x.stderr).toBe(`lafs-backup: exclude_files: ${fifo}: not a regular file (a FIFO or pipe); give a file\n`);
  });
});
