/**
 * The configuration described once (issue 26.11): config/schema.json is a JSON Schema an
 * editor can use (dump-config --schema prints it), the validator compiled from it keeps the
 * one-line errors naming file and key, and the checks beyond JSON Schema (x-check) still run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEFAULTS_FILE, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { SCHEMA_FILE } from '../../src/config/schema.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/tree.js';

/** The schema as a third party (an editor's validator) reads it: plain ajv, our x- keywords only announced. */
function editorValidator() {
  const ajv = new Ajv({ strict: false, allowUnionTypes: true });
  return ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')));
}

describe('the configuration schema', () => {
  it('dump-config --schema prints config/schema.json, a draft-07 schema that accepts the defaults and refuses what the command refuses', async () => {
    const r = await runCli(['dump-config', '--schema']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(readFileSync(SCHEMA_FILE, 'utf8').replace(/\n?$/, '\n'));
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    const validate = editorValidator();
    expect(validate(YAML.parse(readFileSync(DEFAULTS_FILE, 'utf8'))), JSON.stringify(validate.errors)).toBe(true);
    for (const bad of [{ operation: { concurrency: 0 } }, { source: { queue: { pth: 'x' } } }, { http: { timeout: 604801 } }, { exclude_caches: 'yes' }]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
    }
    // Even a configuration that does not load can ask for the schema.
    const dir = tempDir();
    writeFileSync(join(dir, 'broken.yaml'), 'nope: 1\n');
    expect((await runCli(['-c', join(dir, 'broken.yaml'), 'dump-config', '--schema'])).code).toBe(0);
  });

  it('every check beyond JSON Schema still runs, as one line naming the file and the key (exit 2)', async () => {
    const dir = tempDir();
    const cases: [string, RegExp][] = [
      ['nope: 1', /: unknown key 'nope'$/],
      ["filter: ['-(a+)+$']", /: filter\[0\]: rule "-\(a\+\)\+\$" is refused: /],
      ["filter: ['x']", /: filter\[0\]: rule "x" must start with '\+' \(include\) or '-' \(exclude\)$/],
      ["destination: {encoding: {xz: {path_filter: [[10, '(']]}}}", /: destination\.encoding\.xz\.path_filter\[0\]: rule "\(" is not a valid regular expression: /],
      ["destination: {encoding: {xz: {compressed_names: ['(a|a)*$']}}}", /: destination\.encoding\.xz\.compressed_names\[0\]: rule .* is refused: /],
      ["operation: {rate_limit: {bytes: '1/0'}}", /: operation\.rate_limit\.bytes: /],
      ["destination: {result: {append_to_lafs_dir: 'URI:LIT:mfrgg'}}", /: destination\.result\.append_to_lafs_dir: cap#[0-9a-f]+ is a LIT cap, not a writable directory cap$/],
      ["source: {name: 'a/b'}", /: source\.name: "a\/b" cannot name backups: it contains "\/"$/],
      ["destination: {url: 'http://127.0.0.1:99999/uri'}", /: destination\.url: "http:\/\/127\.0\.0\.1:99999\/uri" is not a valid URL/],
      ["destination: {url: 'http://127.0.0.1:3456/'}", /: destination\.url: expected the http:\/\/ or https:\/\/ URL of the gateway's \/uri endpoint/],
      ["exclude: ['']", /: exclude: expected a list of gitignore-like patterns \(strings\), got \[""\]$/],
      ['exclude_if_present: [a/b]', /: exclude_if_present: expected a list of file names, got \["a\/b"\]$/],
      ['one_file_system: 1', /: one_file_system: expected true or false, got 1$/],
      ['hooks: {before_backup: [""]}', /: hooks\.before_backup: expected null, a command string, or a list of strings \(argv\), got \[""\]$/],
      ['destination: {encoding: {xz: {options: {check: none}}}}', /: destination\.encoding\.xz\.options: expected a mapping with preset \(0-9\), extreme \(true\/false\), check \(crc32, crc64, sha256\), got \{"check":"none"\}$/],
    ];
    const f = join(dir, 'c.yaml');
    for (const [text, re] of cases) {
      writeFileSync(f, `${text}\n`);
      let err: unknown;
      try {
        loadConfig({ files: [f] });
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg, text).not.toContain('\n');
      expect(msg, text).toMatch(new RegExp(`^${f.replace(/[.]/g, '\\.')}${re.source}`));
    }
    // As the command line says it: one line, exit 2.
    const r = await runCli(['-c', f, 'dump-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^lafs-backup: ${f.replace(/[.]/g, '\\.')}: destination\\.encoding\\.xz\\.options: expected [^\\n]*\\n$`));
  });
});
