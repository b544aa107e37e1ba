/** `lafs-backup check`: deep-check backups, renew their leases, report what is unhealthy. */
import { treeTotals } from '../browse/tree.js';
import { EXIT, UsageError } from '../errors.js';
import { scrubCaps } from '../core/redact.js';
import { log } from '../log.js';
import { checkBackup, checkTargets, leastRecentlyChecked, unitSummary, type CheckOutcome, type CheckTarget } from '../maintenance/check.js';
import { compileFormat } from '../maintenance/format.js';
import { LostObjects, type Forgotten } from '../maintenance/lost.js';
import { capsFromInput, stdinDashes } from './cap-input.js';
import { defineCommand, loadContext, out } from './common.js';
import { withSession, type Session } from './session.js';

interface CheckArgs {
  caps?: string[];
  'cap-file'?: string | string[];
  lease?: boolean;
  n?: boolean;
  repair?: boolean;
  verify?: boolean;
  'least-recently-checked'?: boolean;
  format?: string;
  'healthy-format'?: string;
  'error-output'?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export const DEFAULT_FORMAT = '{backup[name]}: /{0[path]} ({0[type]}): {0[summary]}';

export default defineCommand<CheckArgs>({
  command: 'check [caps..]',
  describe:
    'Deep-check backups (the caps given, or all in the entry cache), renewing their leases, and print unhealthy nodes; ' +
    'what is lost is forgotten in the entry cache, so that the next backup uploads it again. ' +
    'Exit 0 when all are healthy, 4 when anything is unhealthy or a check failed, 1 when the gateway could not be asked',
  builder: (y) =>
    y
      .positional('caps', { type: 'string', array: true, describe: 'Root caps to check (- reads them from stdin, one a line); default: every backup in the cache' })
      .option('cap-file', { type: 'string', requiresArg: true, describe: 'Read root caps to check from FILE, one a line (keeps them off the command line, where ps shows them)' })
      .option('lease', { type: 'boolean', default: true, describe: 'Renew leases (add-lease=true); --no-lease or -n to skip' })
      .option('n', { type: 'boolean', describe: 'Do not renew leases' })
      .option('repair', { alias: 'r', type: 'boolean', describe: 'Repair what is unhealthy; report only repairs that failed' })
      .option('verify', { type: 'boolean', describe: 'Have the gateway download and verify every share (verify=true): finds damaged shares, at the cost of reading the whole backup from the storage servers' })
      .option('least-recently-checked', { alias: 'a', type: 'boolean', describe: 'Check only the root cap checked longest ago (of those given, else of all; never-checked first, then the oldest backup)' })
      .option('format', { alias: 'f', type: 'string', default: DEFAULT_FORMAT, describe: 'How to print an unhealthy node: {0[path]}, {0[type]}, {0[summary]}, {0[check-results][results][count-good-share-hosts]}, {backup[name]}, {0} (the whole unit)…' })
      .option('healthy-format', { type: 'string', describe: 'Also print healthy nodes, in this format' })
      .option('error-output', { alias: 'e', type: 'boolean', describe: 'Print the report to stderr instead of stdout' })
      .option('json', { type: 'boolean', describe: 'Print one JSON object per backup checked, as an array' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'No summary line on stderr (warnings, errors and -e reports still)' }),
  run: async (args) => {
    const started = Date.now();
    const config = loadContext(args);
    const formats = { unhealthy: compileFormat(args.format ?? DEFAULT_FORMAT, '--format'), healthy: args['healthy-format'] ? compileFormat(args['healthy-format'], '--healthy-format') : undefined };
    const sources = { args: args.caps ?? [], stdin: stdinDashes(['f', 'format', 'healthy-format', 'cap-file']) > 0, files: ([] as string[]).concat(args['cap-file'] ?? []) };
    const given = sources.args.length > 0 || sources.stdin || sources.files.length > 0;
    // Caps are read (and garbage refused) before anything is asked of the gateway.
    const caps = given ? capsFromInput(sources, 'check', { dirs: true }) : undefined;
    // A cache that cannot be written (a read-only disk) is still read: the check runs, and only
    // its time cannot be recorded, which is said once.
    const needs = { stop: true, client: true, progress: { flag: args.progress }, cache: { mode: 'write-if-possible', missing: 'skip', command: 'check' } } as const;
    const run = await withSession(config, needs, async (s) => {
      if (s.cacheReadonly) log.warn(`entry cache ${config.source.entry_cache.path} cannot be written: the backups are checked, but check times are not recorded (-a will not move on)`);
      const checks = new Checks(s, args, formats);
      for (const [i, target] of (await checks.targets(caps)).entries()) await checks.checkOne(target, i);
      return checks;
    });
    await run.print(started);
    if (run.outcomes.some((o) => !o.ran)) return EXIT.FAILURE;
    return run.outcomes.every((o) => o.healthy) ? EXIT.OK : EXIT.UNHEALTHY;
  },
});

type Format = ReturnType<typeof compileFormat>;

/** One `check` run: its targets checked one by one, what they found, and the report printed at the end. */
class Checks {
  readonly outcomes: CheckOutcome[] = [];
  private readonly report: string[] = [];
  private readonly forgotten = new Map<CheckOutcome, Forgotten>();
  /** What the checks find lost is forgotten in the cache, when that is right (maintenance/lost.ts). */
  private readonly lostObjects: LostObjects;
  /** How many targets there are (for the progress label). */
  private total = 0;

  constructor(
    private readonly s: Session,
    private readonly args: CheckArgs,
    private readonly formats: { unhealthy: Format; healthy?: Format },
  ) {
    this.lostObjects = new LostObjects(s.cache, !s.cacheReadonly, s.client!);
  }

  /** A report line: kept for stdout, or with -e on stderr (beside the progress line). */
  private emit(line: string): void {
    const { progress } = this.s;
    if (!this.args['error-output']) this.report.push(line);
    else if (progress) progress.aside(line);
    else process.stderr.write(`${line}\n`);
  }

  /** The caps given, else the cache's backups of the gateway's grid; with -a the one checked longest ago. One target per distinct root cap. */
  async targets(caps: string[] | undefined): Promise<CheckTarget[]> {
    const { cache, client, config } = this.s;
    if (!caps && !cache) throw new UsageError('check: no caps given and no entry cache (source.entry_cache.path) to take the backups from');
    // Nights with no change share one root cap, and it is one object.
    let targets = checkTargets(cache?.listBackups() ?? [], caps);
    if (!caps) {
      // With backups of several grids in the cache, those of the gateway's grid.
      const mine = await this.lostObjects.ofThisGrid(targets);
      targets = mine.targets;
      if (mine.dropped) {
        const line = `${client!.where} is on another grid than ${mine.dropped} of the entry cache's backups were made on: they are not checked through it`;
        if (mine.newestDropped) log.warn(`${line}, and the newest backup is one of them`);
        else log.info(line);
      }
    }
    if (!targets.length) {
      // Silence would look like a healthy check: say there was nothing to check.
      process.stderr.write(`lafs-backup: check: no finished backups in the entry cache ${config.source.entry_cache.path}; nothing to check\n`);
    }
    if (this.args['least-recently-checked'] && targets.length) targets = [leastRecentlyChecked(targets)];
    this.total = targets.length;
    return targets;
  }

  /** Deep-checks one target; what is lost is settled in the cache, the check time recorded. */
  async checkOne(target: CheckTarget, i: number): Promise<void> {
    const { args, s } = this;
    const backup = { name: target.name, generation: target.generation ?? '', cap: target.cap };
    const live = await this.showProgress(target, i);
    const outcome = await checkBackup(s.client!, target, {
      lease: Boolean(args.lease) && !args.n,
      repair: Boolean(args.repair),
      verify: Boolean(args.verify),
      onUnit: (unit, problem) => {
        live.objects++;
        if (args.json) return;
        const data = { 0: { ...unit, summary: unitSummary(unit) }, backup };
        if (problem) this.emit(this.formats.unhealthy(data));
        else if (this.formats.healthy) this.emit(this.formats.healthy(data));
      },
    });
    // A check cut short by a signal settles nothing and records no time.
    s.stop.check();
    this.outcomes.push(outcome);
    if (outcome.error && !args.json) this.emit(`${target.name}: check failed: ${outcome.error}`);
    const lost = await this.lostObjects.settle(outcome);
    if (lost.forgotten) this.forgotten.set(outcome, lost.forgotten);
    if (lost.line && !args.json) this.emit(lost.line);
    if (outcome.ran && target.known && s.cache && !s.cacheReadonly) {
      try {
        s.cache.markChecked(target.cap, problemOf(outcome));
      } catch (e) {
        log.warn(`could not record the check time of ${JSON.stringify(target.name)}: ${(e as Error).message}`);
      }
    }
    log.info({ healthy: outcome.healthy, nodes: outcome.nodes, problems: outcome.problems.length }, `checked ${JSON.stringify(target.name)}`);
  }

  /** The progress line of one target, with totals from a manifest (directory reads only, cheap beside the deep-check itself). */
  private async showProgress(target: CheckTarget, i: number): Promise<{ objects: number; bytes: number }> {
    const live = { objects: 0, bytes: 0 };
    const { progress, client } = this.s;
    if (!progress) return live;
    const label = `${JSON.stringify(target.name)} (${i + 1}/${this.total})`;
    const totals = await progress.counting(`counting ${label}`, 'nodes', (seen) => treeTotals(client!, target.cap, seen));
    progress.phase({ label: `checking ${label}`, unit: 'nodes', totals, read: () => live });
    return live;
  }

  /** The report on stdout (the JSON array, or the lines kept), then the summary line on stderr. */
  async print(started: number): Promise<void> {
    const { args, outcomes } = this;
    if (args.json) {
      const rows = outcomes.map((o) => ({
        name: o.target.name,
        generation: o.target.generation ?? null,
        healthy: o.healthy,
        nodes: o.nodes,
        problems: o.problems.map((p) => ({ path: p.path, type: p.type, summary: p.summary })),
        error: o.error ?? null,
        forgotten: this.forgotten.get(o) ?? null,
      }));
      await out(JSON.stringify(rows, null, 2));
    } else if (this.report.length) await out(this.report.join('\n'));
    if (!args.json && !args.quiet && outcomes.length) process.stderr.write(`lafs-backup: ${checkSummary(outcomes, Boolean(args.lease) && !args.n, Date.now() - started)}\n`);
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The one line a check ends with on stderr (not with -q or --json). */
export function checkSummary(outcomes: readonly CheckOutcome[], lease: boolean, ms: number): string {
  const healthy = outcomes.filter((o) => o.ran && o.healthy).length;
  const unhealthy = outcomes.filter((o) => o.ran && !o.healthy).length;
  const failed = outcomes.filter((o) => !o.ran).length;
  const nodes = outcomes.reduce((n, o) => n + o.nodes, 0);
  const counts = [`${healthy} healthy`, unhealthy ? `${unhealthy} unhealthy` : '', failed ? `${failed} could not be checked` : ''].filter(Boolean).join(', ');
  const leases = lease ? (failed === outcomes.length ? '' : '; leases renewed') : '; leases not renewed (-n)';
  return `check of ${plural(outcomes.length, 'backup')} done in ${(ms / 1000).toFixed(1)} s: ${counts}; ${plural(nodes, 'node')} checked${leases}`;
}

/** What a check found wrong, in one line for the cache (serve warns with it); null when healthy. */
function problemOf(o: CheckOutcome): string | null {
  if (o.error) return scrubCaps(o.error);
  if (o.healthy) return null;
  const n = o.problems.length;
  const lost = o.lost.length ? `, ${o.lost.length} lost` : o.rootGone ? ', the root gone' : '';
  return `unhealthy: ${n} object${n === 1 ? '' : 's'} with problems${lost}`;
}
