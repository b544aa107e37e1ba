/** A fresh embedded grid per test file, on an ephemeral loopback port. */
import { afterAll, beforeAll } from 'vitest';
import { startGrid, type Grid } from '../../src/grid/server.js';

export function useGrid(): { readonly grid: Grid; readonly url: string } {
  const holder: { grid?: Grid } = {};
  beforeAll(async () => {
    holder.grid = await startGrid();
  });
  afterAll(async () => {
    await holder.grid?.stop();
  });
  return {
    get grid() {
      return holder.grid!;
    },
    get url() {
      return holder.grid!.url;
    },
  };
}
