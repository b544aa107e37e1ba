import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    // Most test time is spent waiting (spawned CLIs, the grid, trust windows), not computing: three
    // forks on two cores finish in well under half the wall time of vitest's default (cores - 1 = 1).
    // LAFS_TEST_WORKERS=1 for a quiet machine's ordering when chasing a flake.
    maxWorkers: Number(process.env.LAFS_TEST_WORKERS ?? 3),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
