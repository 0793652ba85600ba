import { defineConfig } from 'vitest/config';

// Benchmarks live in bench/ and never run here: they take minutes and print numbers a shared runner cannot gate on.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: PGlite instances are memory-hungry, keep parallelism modest.
    maxWorkers: 2,
  },
});
