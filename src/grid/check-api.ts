/** The checker's part of the web API: `t=check` of one node, and the `t=stream-deep-check` / `t=stream-manifest` streams. */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { addLease, checkAndRepair, checkResults, walk } from './checker.js';
import { dirChildren, isDir, resolve, Unrecoverable } from './nodes.js';
import { pyDumps } from './pyjson.js';
import { answer, plainError } from './respond.js';
import type { GridState } from './state.js';
import { answerGoneDir, traverse } from './webapi.js';

type Res = ServerResponse;

/** `POST /uri/CAP?t=check&output=JSON` for a single node. */
export function checkOne(state: GridState, res: Res, capText: string, names: string[], q: URLSearchParams): void {
  state.stats.check++;
  const target = traverse(state, res, resolve(state, capText), names);
  if (!target) return;
  if (q.get('add-lease') === 'true') addLease(state, target.node);
  const verify = q.get('verify') === 'true';
  const result = q.get('repair') === 'true' ? checkAndRepair(state, target.node, verify) : checkResults(state, target.node, 'Healthy', verify);
  answer(res, 200, 'text/plain', `${pyDumps(result, 1)}\n`, { chunked: true });
}

/** `POST /uri/CAP?t=stream-deep-check` and `t=stream-manifest`. */
export async function streamWalk(state: GridState, res: Res, capText: string, names: string[], q: URLSearchParams, deepCheck: boolean): Promise<void> {
  if (deepCheck) state.stats.deep_check++;
  else state.stats.manifest++;
  const target = traverse(state, res, resolve(state, capText), names);
  if (!target) return;
  const node = target.node;
  if (node.kind === 'unknown') return plainError(res, 400, 'unknown node');
  if (isDir(node)) {
    try {
      dirChildren(state, node);
    } catch (e) {
      if (!(e instanceof Unrecoverable)) throw e;
      // The root itself cannot be read: the gateway fails before streaming anything.
      if (node.kind !== 'chk-dir') return answerGoneDir(res, node, e.mutable);
    }
  }
  res.writeHead(200, { 'Content-Type': 'text/html', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' });
  const lines = walk(state, node, {
    check: deepCheck,
    addLease: q.get('add-lease') === 'true',
    repair: q.get('repair') === 'true',
    verify: q.get('verify') === 'true',
  });
  for (const line of lines) {
    if (res.destroyed) return;
    const text = 'error' in line ? String(line.error) : `${pyDumps(line)}\n`;
    if (!res.write(text)) await once(res, 'drain');
  }
  res.end();
}
