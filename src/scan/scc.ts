/** Strongly connected components of a graph, for the regex check (regex-linear.ts). */

/** Strongly connected components (iterative Tarjan) of a graph given by its successor function. */
/**
 * The component of every node reachable from `roots` (iterative Tarjan: no recursion limit);
 * `tooBig` is thrown past `budget` nodes.
 */
export function sccs<K>(roots: K[], next: (k: K) => K[], key: (k: K) => string, budget: number, tooBig: () => Error): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const comp = new Map<string, number>();
  const stack: K[] = [];
  const onStack = new Set<string>();
  let counter = 0;
  let comps = 0;
  for (const root of roots) {
    if (index.has(key(root))) continue;
    const work: { k: K; succ: K[]; i: number }[] = [{ k: root, succ: next(root), i: 0 }];
    index.set(key(root), counter);
    low.set(key(root), counter++);
    stack.push(root);
    onStack.add(key(root));
    while (work.length) {
      const top = work[work.length - 1]!;
      if (top.i < top.succ.length) {
        const w = top.succ[top.i++]!;
        const wk = key(w);
        if (!index.has(wk)) {
          if (counter > budget) throw tooBig();
          index.set(wk, counter);
          low.set(wk, counter++);
          stack.push(w);
          onStack.add(wk);
          work.push({ k: w, succ: next(w), i: 0 });
        } else if (onStack.has(wk)) low.set(key(top.k), Math.min(low.get(key(top.k))!, index.get(wk)!));
        continue;
      }
      work.pop();
      const tk = key(top.k);
      if (work.length) {
        const pk = key(work[work.length - 1]!.k);
        low.set(pk, Math.min(low.get(pk)!, low.get(tk)!));
      }
      if (low.get(tk) === index.get(tk)) {
        for (;;) {
          const w = stack.pop()!;
          onStack.delete(key(w));
          comp.set(key(w), comps);
          if (key(w) === tk) break;
        }
        comps++;
      }
    }
  }
  return comp;
}
