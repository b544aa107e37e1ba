/**
 * The grid the end-to-end tests run against: a fresh embedded grid per test file, on an
 * ephemeral loopback port — or, with `LAFS_TEST_GATEWAY=http://HOST:PORT` (`npm run
 * test:gateway`), a real Tahoe-LAFS gateway. Tests that inject faults inside the embedded grid
 * or read its counters are then skipped, each with the reason in its name.
 */
import { afterAll, beforeAll, it } from 'vitest';
import { startGrid, type Grid } from '../../src/grid/server.js';

/** The real gateway's `/uri` endpoint when the suite runs against one. */
export const EXTERNAL = process.env.LAFS_TEST_GATEWAY ? `${process.env.LAFS_TEST_GATEWAY.replace(/\/+$/, '').replace(/\/uri$/, '')}/uri` : undefined;

export function useGrid(): { readonly grid: Grid; readonly url: string } {
  const holder: { grid?: Grid } = {};
  beforeAll(async () => {
    if (!EXTERNAL) holder.grid = await startGrid();
  });
  afterAll(async () => {
    await holder.grid?.stop();
  });
  return {
    get grid() {
      if (!holder.grid) throw new Error('this test needs the embedded grid (it is running against LAFS_TEST_GATEWAY); mark it itEmbedded');
      return holder.grid;
    },
    get url() {
      return EXTERNAL ?? holder.grid!.url;
    },
  };
}

const WHY = 'needs the embedded grid: it counts requests, damages shares or stops servers inside it';

/** A test that needs the embedded grid itself: skipped, with the reason, against a real gateway. */
export const itEmbedded = ((name: string, ...rest: unknown[]) =>
  EXTERNAL ? it.skip(`${name} [skipped: ${WHY}]`, ...(rest as [])) : it(name, ...(rest as []))) as typeof it;

/** Runs `fn`, collecting the caps of the files the embedded grid received meanwhile. */
export async function uploadsDuring<T>(grid: Grid, fn: () => Promise<T>): Promise<{ result: T; uploaded: string[] }> {
  const uploaded: string[] = [];
  const onUpload = (cap: string) => uploaded.push(cap);
  grid.state.events.on('upload', onUpload);
  try {
    return { result: await fn(), uploaded };
  } finally {
    grid.state.events.off('upload', onUpload);
  }
}
