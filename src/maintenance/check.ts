/**
 * `check`: a deep-check of each backup (renewing leases unless told not to, repairing when
 * asked), reporting unhealthy nodes — or, with repair, only the repairs that failed.
 *
 * A gateway that ends the stream with `ERROR:` (an unrecoverable directory) makes that
 * backup's check a failure with the gateway's message (caps scrubbed); a backup whose root is
 * gone (404/410) is reported by name. Neither crashes the run: the next backup is checked.
 */
import { redact, scrubCaps } from '../core/redact.js';
import type { BackupRow } from '../cache/db.js';
import type { TahoeClient } from '../tahoe/client.js';
import { TahoeError } from '../tahoe/errors.js';
import type { NodeUnit, StreamUnit } from '../tahoe/types.js';

export interface CheckTarget {
  /** The cap is a backup's in the entry cache (its check time is recorded there). */
  known: boolean;
  name: string;
  cap: string;
  /** The newest generation with this cap. */
  generation?: number;
  /** When this cap was last checked (seconds; null: never). */
  tsCheck?: number | null;
  /** The oldest generation with this cap: who waited longest. */
  oldest?: number;
}

export interface Problem {
  path: string;
  type: string;
  summary: string;
  unit: NodeUnit;
}

/** A node the check found unrecoverable (no version with enough good shares). */
export interface LostNode {
  type: string;
  cap: string;
  /** The caps of the directories above it, on the path the check reached it by (their dircaps contain it). */
  above: string[];
}

export interface CheckOutcome {
  target: CheckTarget;
  /** The deep-check ran to its end (stats, or the gateway's ERROR). */
  ran: boolean;
  healthy: boolean;
  nodes: number;
  problems: Problem[];
  /** Why the check itself failed (gateway ERROR, backup gone, gateway unreachable). */
  error?: string;
  stats?: Record<string, unknown>;
  /** Nodes found unrecoverable while enough storage servers answered to tell (maintenance/lost.ts). */
  lost: LostNode[];
  /** Nodes found unrecoverable while fewer storage servers answered than they need: maybe only out of reach. */
  unsure: number;
  /** The root itself is gone (the gateway answered 410 or 404 for it). */
  rootGone?: boolean;
}

/** At most this many lost nodes are kept apart; past it, a check forgets the grid's rows whole. */
export const LOST_LIMIT = 10_000;

export interface CheckOptions {
  lease: boolean;
  repair: boolean;
  /** verify=true: the gateway downloads and checks every share, not only counts them. */
  verify?: boolean;
  /** Called for each unit as it is judged (for the formatted report). */
  onUnit?: (unit: NodeUnit, problem: boolean) => void;
}

/** The unit's one-line state, for reports: the gateway's summary, or what repair did. */
export function unitSummary(u: NodeUnit): string {
  const cr = u['check-results'];
  if (cr) return cr.summary ?? (cr.results?.healthy ? 'Healthy' : 'Not healthy');
  const rr = u['check-and-repair-results'];
  if (rr) {
    if (!rr['repair-attempted']) return rr['pre-repair-results']?.summary ?? 'Healthy';
    return rr['repair-successful'] ? `repaired (${rr['pre-repair-results']?.summary ?? ''})` : `repair failed: ${rr['post-repair-results']?.summary ?? 'unhealthy'}`;
  }
  return 'unchecked';
}

/** Whether a unit is a problem: unhealthy, or — with repair — a repair that failed. */
export function isProblem(u: NodeUnit, repair: boolean): boolean {
  if (repair) {
    const rr = u['check-and-repair-results'];
    if (!rr) return false;
    if (rr['repair-attempted'] && !rr['repair-successful']) return true;
    const post = rr['post-repair-results']?.results;
    return post ? post.healthy === false : false;
  }
  const r = u['check-results']?.results;
  return r ? r.healthy === false : false;
}

/**
 * Whether a unit says its node is lost: not recoverable (after repair, when repairing) — or
 * `unsure` when fewer storage servers answered than its shares need, so that it may only be
 * out of reach. Undefined for a recoverable node.
 */
export function lostState(u: NodeUnit): 'lost' | 'unsure' | undefined {
  const rr = u['check-and-repair-results'];
  const r = (u['check-results'] ?? rr?.['post-repair-results'] ?? rr?.['pre-repair-results'])?.results;
  if (!r || r.recoverable !== false) return undefined;
  const responding = r['servers-responding'];
  const needed = r['count-shares-needed'];
  if (Array.isArray(responding) && typeof needed === 'number' && responding.length < needed) return 'unsure';
  return 'lost';
}

const isAbove = (a: readonly string[], b: readonly string[]) => a.length < b.length && a.every((x, i) => x === b[i]);

export async function checkBackup(client: TahoeClient, target: CheckTarget, opts: CheckOptions): Promise<CheckOutcome> {
  const outcome: CheckOutcome = { target, ran: false, healthy: true, nodes: 0, problems: [], lost: [], unsure: 0 };
  // The directories above the node at hand: the stream goes depth first, each directory before
  // what is in it, so this chain is its path's (bounded by the depth of the tree).
  const dirs: { path: string[]; cap: string }[] = [];
  try {
    for await (const unit of client.deepCheck(target.cap, { addLease: opts.lease, repair: opts.repair, verify: opts.verify }) as AsyncIterable<StreamUnit>) {
      if (unit.type === 'stats') {
        outcome.stats = (unit as { stats: Record<string, unknown> }).stats;
        outcome.ran = true;
      } else if (unit.type === 'error') {
        outcome.ran = true;
        outcome.healthy = false;
        outcome.error = `the gateway stopped the check: ${scrubCaps((unit as { message: string }).message)}`;
      } else {
        const node = unit as NodeUnit;
        outcome.nodes++;
        while (dirs.length && !isAbove(dirs[dirs.length - 1]!.path, node.path)) dirs.pop();
        const lost = lostState(node);
        if (lost === 'unsure') outcome.unsure++;
        else if (lost && outcome.lost.length <= LOST_LIMIT) outcome.lost.push({ type: String(node.type), cap: node.cap, above: dirs.map((d) => d.cap) });
        if (node.type === 'directory') dirs.push({ path: node.path, cap: node.cap });
        const problem = isProblem(node, opts.repair);
        if (problem) {
          outcome.healthy = false;
          outcome.problems.push({ path: node.path.join('/'), type: String(node.type), summary: unitSummary(node), unit: node });
        }
        opts.onUnit?.(node, problem);
      }
    }
  } catch (e) {
    outcome.healthy = false;
    if (e instanceof TahoeError && (e.tahoeCode === 'gone' || e.tahoeCode === 'not-found')) {
      outcome.ran = true;
      outcome.rootGone = true;
      outcome.error = `the backup is gone from the grid (${e.status}: no shares of its root directory)`;
    } else if (e instanceof TahoeError && e.tahoeCode === 'truncated') {
      // The check ran and did not finish: what it did not report cannot be called healthy.
      outcome.ran = true;
      outcome.error = e.message;
    } else if (e instanceof TahoeError) {
      outcome.error = e.message;
    } else throw e;
  }
  return outcome;
}

/** Names a cap that is not in the cache. */
export function anonymousTarget(cap: string): CheckTarget {
  return { known: false, name: redact(cap), cap };
}

/**
 * What to check: one target per distinct root cap (nights with no change share one), of the
 * caps given, else of every backup. A known cap goes by its newest backup's name and
 * generation; it was last checked when any backup with it was.
 */
export function checkTargets(backups: readonly BackupRow[], caps?: readonly string[]): CheckTarget[] {
  const byCap = new Map<string, CheckTarget>();
  for (const b of backups) {
    const t = byCap.get(b.cap);
    if (!t) {
      byCap.set(b.cap, { known: true, name: b.name, cap: b.cap, generation: b.generation, tsCheck: b.tsCheck, oldest: b.generation });
      continue;
    }
    // Rows come by generation: a later one names the target.
    if (b.generation >= (t.generation ?? 0)) Object.assign(t, { name: b.name, generation: b.generation });
    if (b.tsCheck !== null && (t.tsCheck === null || t.tsCheck === undefined || b.tsCheck > t.tsCheck)) t.tsCheck = b.tsCheck;
    t.oldest = Math.min(t.oldest ?? b.generation, b.generation);
  }
  if (!caps) return [...byCap.values()];
  return caps.map((cap) => byCap.get(cap) ?? anonymousTarget(cap));
}

/** The target checked longest ago: never-checked first, then the oldest check; ties go to the oldest backup. */
export function leastRecentlyChecked(targets: readonly CheckTarget[]): CheckTarget {
  return [...targets].sort((a, b) => (a.tsCheck ?? 0) - (b.tsCheck ?? 0) || (a.oldest ?? Infinity) - (b.oldest ?? Infinity))[0]!;
}
