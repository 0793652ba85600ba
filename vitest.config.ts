import { defineConfig } from 'vitest/config';

// Benchmarks live in bench/ and never run here: they take minutes and print numbers a shared runner cannot gate on.
const common = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
};

// With DOCUPOD_TEST_DATABASE_URL set (CI), the test database is Postgres, while `npm start` runs on PGlite: the API
// suites (test/*.test.ts) then run a second time on PGlite, so both drivers users run carry the whole API.
const onPostgres = Boolean(process.env.DOCUPOD_TEST_DATABASE_URL);

export default defineConfig({
  test: {
    // Two cores: PGlite instances are memory-hungry, keep parallelism modest.
    maxWorkers: 2,
    projects: [
      { test: { ...common, name: onPostgres ? 'postgres' : 'pglite', include: ['src/**/*.test.ts', 'test/**/*.test.ts'] } },
      ...(onPostgres ? [{ test: { ...common, name: 'api-on-pglite', include: ['test/*.test.ts'], env: { DOCUPOD_TEST_DATABASE_URL: '', DOCUPOD_TEST_PGLITE_ONLY: '1' } } }] : []),
    ],
  },
});
