import { defineConfig } from 'vitest/config';
import SummaryLineReporter from './tests/helpers/summary-line-reporter.js';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    reporters: ['default', new SummaryLineReporter()],
    globalSetup: ['tests/helpers/temp-root.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Suites start their own worker threads; two forks keep a 2-core machine busy, not swamped.
    pool: 'forks',
    maxWorkers: 2,
  },
});
