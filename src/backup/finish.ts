/**
 * What comes after a backup is recorded: the result delivered (result file, lafs dir) and the
 * after hook, however the backup ended. A failure of either leaves the backup recorded: it is
 * a problem line and an exit code, never a lost backup.
 */
import type { Config } from '../config/load.js';
import { AppError, EXIT, HookError, InterruptedError } from '../errors.js';
import type { HookVars, Outcome, runHook as RunHook } from '../hooks.js';
import { log, oneLine } from '../log.js';
import type { TahoeClient } from '../tahoe/client.js';
import { deliver, type Delivered } from './result.js';
import type { BackupSummary } from './summary.js';

export interface BackupOutcome {
  summary: BackupSummary;
  /** The root cap (undefined with --queue-only and --dry-run). A secret: output, never a log line. */
  cap?: string;
  /** 0, 3 (incomplete), 1 (the result could not be delivered) or 6 (after_backup failed). */
  exitCode: number;
  /** One-line problems that came after the backup itself was recorded (delivery, after hook). */
  problems: string[];
}

/** What the after hook is told about how the backup ended. */
function outcomeOf(code: number | undefined, err: unknown): Outcome {
  if (err instanceof HookError) return 'aborted';
  if (err instanceof InterruptedError) return 'interrupted';
  if (err !== undefined) return 'failed';
  return code === EXIT.INCOMPLETE ? 'incomplete' : 'success';
}

/** The result file and the lafs dir, through `client` (the run's, bound to its stop). A failure here leaves the backup recorded: exit 1, said. */
export async function deliverResult(config: Config, client: TahoeClient, b: Delivered, ours: ReadonlySet<string>, result: BackupOutcome): Promise<void> {
  try {
    await deliver(config, client, b, ours);
  } catch (e) {
    if (!(e instanceof AppError) || e instanceof InterruptedError) throw e;
    result.problems.push(`the backup is recorded, but its result could not be delivered: ${oneLine(e.message)}`);
    result.exitCode = EXIT.FAILURE;
  }
}

/**
 * Runs after_backup however the backup ended. Its failure is the command's outcome only when
 * the backup itself went well (exit 6, the cap still printed); otherwise a warning.
 */
export async function afterHook(runHook: typeof RunHook, config: Config, vars: HookVars, result: BackupOutcome | undefined, failure: unknown, opts: { timeoutS: number; signal: AbortSignal }): Promise<void> {
  const code = result?.exitCode;
  const exitCode = failure === undefined ? code : failure instanceof AppError ? failure.exitCode : EXIT.FAILURE;
  const error = failure === undefined ? undefined : oneLine(failure instanceof Error ? failure.message : String(failure));
  try {
    await runHook('after_backup', config.hooks.after_backup, { ...vars, cap: failure === undefined ? vars.cap : undefined, outcome: outcomeOf(code, failure), exitCode, error }, opts);
  } catch (e) {
    if (!result || failure !== undefined) {
      log.warn(oneLine((e as Error).message));
      return;
    }
    result.problems.push(oneLine((e as Error).message));
    if (result.exitCode === EXIT.OK || result.exitCode === EXIT.INCOMPLETE) result.exitCode = EXIT.HOOK;
  }
}
