import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Suites start their own worker threads; two forks keep a 2-core machine busy, not swamped.
    pool: 'forks',
    maxWorkers: 2,
  },
});
