import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnServer, type ChildServer } from './fixtures/child-server.js';
import { freshDatabase, testDatabaseUrl, type TestDatabase } from './fixtures/database.js';

// The built server on a real Postgres while the server ends every session of its database (a restart, a failover,
// an admin's pg_terminate_backend). node-postgres then emits 'error' on the pool's idle clients, which crashes a
// process that does not listen for it. The server must stay up, say so in its log, and answer on new connections.

describe.skipIf(!testDatabaseUrl())('the server when Postgres ends its connections', () => {
  let t: TestDatabase | undefined;
  let server: ChildServer | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'docupod-pgloss-'));
  afterAll(async () => {
    await server?.stop();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs the lost connections, stays up and answers again', async () => {
    t = await freshDatabase('postgres');
    server = await spawnServer([], {
      DATABASE_URL: t.url!,
      DOCUPOD_DATA_DIR: dir,
      DOCUPOD_BLOB_STORE: 'postgres',
      DOCUPOD_JWT_SECRET: 'connection-loss-secret-that-is-at-least-32-characters',
      DOCUPOD_LOG_LEVEL: 'info',
    });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200); // the pool's client has answered and sits idle
    const dbName = new URL(t.url!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: testDatabaseUrl() });
    await admin.connect();
    try {
      const ended = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
      expect(ended.rowCount).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    const logged = (msg: string) => server!.logs.some((l) => l.msg === msg);
    for (let i = 0; i < 200 && !logged('an idle database connection was lost; the pool replaces it'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(logged('an idle database connection was lost; the pool replaces it'), server.output()).toBe(true);
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    // The job queue's liveness lock was on one of those sessions too: it is taken again on a new connection.
    for (let i = 0; i < 200 && !logged('job workers liveness lock held again'); i++) await new Promise((r) => setTimeout(r, 25));
    expect(logged('job workers liveness lock held again'), server.output()).toBe(true);
  }, 60_000);
});
