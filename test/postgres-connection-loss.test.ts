import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/storage/database.js';
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

  it('a connection lost inside a transaction fails that transaction only: no unheard error event, the pool goes on', async () => {
    // A transaction holds its client out of the pool, where the pool's idle listener does not cover it: unheard, the
    // client's 'error' event crashed the process (retrieval died so on the stack's Postgres restart). Here it would
    // be an uncaught exception in this test worker, which vitest reports as a failure.
    const own = await freshDatabase('postgres');
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Parameters<typeof openDatabase>[0]['log'];
    const database = await openDatabase({ url: own.url!, log });
    try {
      // Its failure is caught at once: it may come while the loop below still runs (an unhandled rejection otherwise).
      const inFlight = database.db
        .transaction(async (tx) => {
          await tx.execute(sql`select pg_sleep(10)`);
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      const admin = new pg.Client({ connectionString: testDatabaseUrl() });
      await admin.connect();
      try {
        for (let i = 0; i < 100; i++) {
          const r = await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query like '%pg_sleep%' and pid <> pg_backend_pid()`, [new URL(own.url!).pathname.slice(1)]);
          if (r.rowCount) break;
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await admin.end();
      }
      expect(await inFlight).toBeInstanceOf(Error);
      await new Promise((r) => setTimeout(r, 100)); // the client's 'error' event follows the rejection
      expect(warnings).toContain('a database connection in use was lost; its query fails and the pool replaces it');
      await database.ping(); // a new connection serves the next query
    } finally {
      await database.close();
      await own.close();
    }
  }, 30_000);
});
