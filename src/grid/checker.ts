/**
 * Checking, repairing, lease renewal and deep traversal, producing the units of
 * `t=stream-manifest` / `t=stream-deep-check` in a real gateway's order: the node itself, its
 * file children (by name), then each subdirectory in turn; a node already reached (by verify
 * cap) is not visited again; LIT nodes have no verify cap and always appear.
 */
import { byName, type PackedChild } from './dirnode.js';
import { dirChildren, fileSize, isDir, resolve, roCap, Unrecoverable, verifyCap, type Resolved } from './nodes.js';
import { LEASE_SECONDS, type GridState } from './state.js';

export interface GridWalkOptions {
  check: boolean;
  repair?: boolean;
  addLease?: boolean;
  /** verify=true: every share's bytes are read and checked, not only counted. */
  verify?: boolean;
}

type Unit = Record<string, unknown>;

function placementOf(state: GridState, r: Resolved, verify = false): number[][] | undefined {
  // An object whose bytes are gone (or, verified, damaged) has no good share anywhere.
  if (r.kind === 'chk-file' || r.kind === 'chk-dir') {
    if (!r.obj) return undefined;
    const ok = verify ? state.verified(r.obj.si, r.obj.size, r.kind === 'chk-file' ? 'file' : 'dir') : state.intact(r.obj.si, r.obj.size);
    return ok ? r.obj.placement : r.obj.placement.map(() => []);
  }
  if (r.kind === 'mutable-dir') return r.dir?.placement;
  return undefined;
}

function storageIndex(r: Resolved): string {
  if (r.kind === 'chk-file' || r.kind === 'chk-dir') return r.si;
  if (r.kind === 'mutable-dir') return r.dir?.si ?? r.si;
  return '';
}

/** Maximum matching between servers that are up and the distinct shares they hold. */
function happiness(state: GridState, placement: number[][]): number {
  const owner = new Map<number, number>();
  const tryServer = (s: number, seen: Set<number>): boolean => {
    for (const sh of placement[s]!) {
      if (seen.has(sh)) continue;
      seen.add(sh);
      const o = owner.get(sh);
      if (o === undefined || tryServer(o, seen)) {
        owner.set(sh, s);
        return true;
      }
    }
    return false;
  };
  let n = 0;
  for (const s of state.liveServers()) if (tryServer(s, new Set())) n++;
  return n;
}

export function checkResults(state: GridState, r: Resolved, summaryCase: 'Healthy' | 'healthy' = 'Healthy', verify = false): Unit {
  const si = storageIndex(r);
  if (r.kind === 'lit-file' || r.kind === 'lit-dir') return { 'storage-index': '', results: { healthy: true } };
  const { needed, total } = state.shape;
  const placement = placementOf(state, r, verify) ?? state.serversUp.map(() => []);
  const live = state.liveServers();
  const sharemap: Record<string, string[]> = {};
  const good = new Set<number>();
  let hosts = 0;
  for (const s of live) {
    const shares = placement[s] ?? [];
    if (shares.length) hosts++;
    for (const sh of shares) {
      good.add(sh);
      const key = r.kind === 'mutable-dir' ? `seq${r.dir?.seq ?? 1}-${si.slice(0, 4)}-sh${sh}` : String(sh);
      (sharemap[key] ??= []).push(state.serverIds[s]!);
    }
  }
  const healthy = good.size >= total;
  const isRecoverable = good.size >= needed;
  return {
    'storage-index': si,
    // Mutable files say "Unhealthy", immutable ones "Not Healthy" (as a real gateway does).
    summary: healthy ? summaryCase : `${r.kind === 'mutable-dir' ? 'Unhealthy' : 'Not Healthy'}: ${good.size} shares (enc ${needed}-of-${total})`,
    results: {
      'count-happiness': happiness(state, placement),
      'count-shares-good': good.size,
      'count-shares-needed': needed,
      'count-shares-expected': total,
      'count-good-share-hosts': hosts,
      'count-corrupt-shares': 0,
      'list-corrupt-shares': [],
      'servers-responding': live.map((s) => state.serverIds[s]!),
      sharemap,
      'count-wrong-shares': 0,
      'count-recoverable-versions': isRecoverable ? 1 : 0,
      'count-unrecoverable-versions': isRecoverable ? 0 : 1,
      healthy,
      recoverable: isRecoverable,
    },
  };
}

export function checkAndRepair(state: GridState, r: Resolved, verify = false): Unit {
  if (r.kind === 'lit-file' || r.kind === 'lit-dir') return { 'storage-index': '', 'repair-attempted': false };
  const pre = checkResults(state, r, 'Healthy', verify);
  const preResults = pre.results as { healthy: boolean; recoverable: boolean };
  const placement = placementOf(state, r);
  if (preResults.healthy || !placement) {
    return { 'storage-index': pre['storage-index'], 'repair-attempted': false, 'repair-successful': false, 'pre-repair-results': pre, 'post-repair-results': pre };
  }
  if (preResults.recoverable) {
    state.repairPlacement(placement);
    state.changed();
  }
  const post = checkResults(state, r, r.kind === 'mutable-dir' ? 'Healthy' : 'healthy', verify);
  return {
    'storage-index': pre['storage-index'],
    'repair-attempted': true,
    'repair-successful': (post.results as { healthy: boolean }).healthy,
    'pre-repair-results': pre,
    'post-repair-results': post,
  };
}

export function addLease(state: GridState, r: Resolved): void {
  const target = r.kind === 'chk-file' || r.kind === 'chk-dir' ? r.obj : r.kind === 'mutable-dir' ? r.dir : undefined;
  if (!target) return;
  target.leaseExpires = Math.floor(Date.now() / 1000) + LEASE_SECONDS;
  target.leaseRenewals += 1;
  state.changed();
}

function nodeType(r: Resolved): string {
  if (r.kind === 'unknown') return 'unknown';
  return isDir(r) ? 'directory' : 'file';
}

/** Deep-stats over the nodes walked, in the gateway's field order. */
class DeepStats {
  private s = {
    'count-immutable-files': 0,
    'count-mutable-files': 0,
    'count-literal-files': 0,
    'count-files': 0,
    'count-directories': 0,
    'count-unknown': 0,
    'size-immutable-files': 0,
    'size-literal-files': 0,
    'size-directories': 0,
    'largest-directory': 0,
    'largest-directory-children': 0,
    'largest-immutable-file': 0,
  };
  private histogram = new Map<string, [number, number, number]>();

  add(state: GridState, r: Resolved, children?: number): void {
    if (r.kind === 'unknown') {
      this.s['count-unknown']++;
      return;
    }
    if (isDir(r)) {
      this.s['count-directories']++;
      const size = r.kind === 'lit-dir' ? r.packed.length : r.kind === 'chk-dir' ? (r.cap.size ?? 0) : dirSize(state, r);
      this.s['size-directories'] += size;
      this.s['largest-directory'] = Math.max(this.s['largest-directory'], size);
      this.s['largest-directory-children'] = Math.max(this.s['largest-directory-children'], children ?? 0);
      return;
    }
    const size = fileSize(r);
    this.s['count-files']++;
    if (r.kind === 'lit-file') {
      this.s['count-literal-files']++;
      this.s['size-literal-files'] += size;
    } else {
      this.s['count-immutable-files']++;
      this.s['size-immutable-files'] += size;
      this.s['largest-immutable-file'] = Math.max(this.s['largest-immutable-file'], size);
    }
    const [lo, hi] = bucket(size);
    const b = this.histogram.get(`${lo}`) ?? [lo, hi, 0];
    b[2]++;
    this.histogram.set(`${lo}`, b);
  }

  unit(): Unit {
    const histogram = [...this.histogram.values()].sort((a, b) => a[0] - b[0]);
    return { type: 'stats', stats: { 'api-version': 1, ...this.s, 'size-files-histogram': histogram } };
  }
}

function dirSize(state: GridState, r: Resolved): number {
  try {
    return dirChildren(state, r).reduce((n, c) => n + c.name.length + c.ro.length + 60, 0);
  } catch {
    return 0;
  }
}

/** Tahoe's histogram buckets: [0,0], [1,3], [4,10], [11,31], [32,100], [101,316], … */
function bucket(size: number): [number, number] {
  if (size === 0) return [0, 0];
  let lo = 1;
  for (let n = 1; ; n++) {
    const hi = Math.floor(10 ** (n / 2));
    if (size <= hi) return [lo, hi];
    lo = hi + 1;
  }
}

/** Walks from `root`, yielding the stream's lines (JSON units, or an ERROR text at the end). */
export function* walk(state: GridState, root: Resolved, opts: GridWalkOptions): Generator<Unit | { error: string }> {
  const seen = new Set<string>();
  const stats = new DeepStats();
  const rootVerify = verifyCap(root, state);
  if (rootVerify) seen.add(rootVerify);

  function unitFor(r: Resolved, path: string[], children?: number): Unit {
    stats.add(state, r, children);
    const v = verifyCap(r, state) ?? '';
    const repaircap = r.kind === 'chk-file' ? v : r.kind === 'mutable-dir' && r.writable ? r.cap.text : '';
    const unit: Unit = {
      path,
      cap: r.kind === 'unknown' ? r.text : r.kind === 'mutable-dir' ? r.cap.text : (roCap(r) ?? ''),
      type: nodeType(r),
      verifycap: v,
      repaircap,
      'storage-index': storageIndex(r),
    };
    if (opts.check && r.kind !== 'unknown') {
      if (opts.addLease) addLease(state, r);
      if (opts.repair) unit['check-and-repair-results'] = checkAndRepair(state, r, opts.verify);
      else unit['check-results'] = checkResults(state, r, 'Healthy', opts.verify);
    }
    return unit;
  }

  function* dir(r: Resolved, path: string[]): Generator<Unit | { error: string }, boolean> {
    let kids: PackedChild[];
    try {
      kids = dirChildren(state, r);
    } catch (e) {
      if (e instanceof Unrecoverable) {
        yield { error: noSharesError(state) };
        return false;
      }
      throw e;
    }
    const files: [Resolved, string[]][] = [];
    const dirs: [Resolved, string[]][] = [];
    for (const kid of [...kids].sort(byName)) {
      const kr = resolve(state, kid.ro);
      const kpath = [...path, kid.name];
      const v = verifyCap(kr, state);
      if (v) {
        if (seen.has(v)) continue;
        seen.add(v);
      }
      (isDir(kr) ? dirs : files).push([kr, kpath]);
    }
    for (const [kr, kpath] of files) yield unitFor(kr, kpath);
    for (const [kr, kpath] of dirs) {
      let count: number | undefined;
      try {
        count = dirChildren(state, kr).length;
      } catch {
        count = 0;
      }
      yield unitFor(kr, kpath, count);
      const ok: boolean = yield* dir(kr, kpath);
      if (!ok) return false;
    }
    return true;
  }

  if (isDir(root)) {
    let count = 0;
    try {
      count = dirChildren(state, root).length;
    } catch {
      /* reported by dir() below */
    }
    yield unitFor(root, [], count);
    const ok = yield* dir(root, []);
    if (!ok) return;
  } else {
    yield unitFor(root, []);
  }
  yield stats.unit();
}

export function noSharesError(state: GridState): string {
  const k = state.shape.needed;
  return [
    `ERROR: NoSharesError(no shares (need ${k}). Last failure: None)`,
    `[Failure instance: Traceback: <class 'allmydata.interfaces.NoSharesError'>: no shares (need ${k}). Last failure: None`,
    '--- <exception caught here> ---',
    'lafs-backup-grid/checker.ts:walk',
    ']',
  ].join('\n');
}
