import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { eq, sql } from 'drizzle-orm';
import { backends, databaseWithoutVector, describeOnPostgres, freshDatabase } from '../../test/fixtures/database.js';
import { openDatabase, rowsOf } from './database.js';
import { users, workspaces, workspaceMembers } from './schema.js';

describe.each(backends())('storage on %s', (backend) => {
  it('migrates, and migrating again changes nothing', async () => {
    const t = await freshDatabase(backend);
    try {
      await t.database.migrate();
      const tables = rowsOf<{ table_name: string }>(
        await t.database.db.execute(sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`),
      ).map((r) => r.table_name);
      expect(tables).toEqual(expect.arrayContaining(['users', 'workspaces', 'workspace_members', 'refresh_tokens', 'api_keys', 'instance_settings']));
    } finally {
      await t.close();
    }
  });

  it('enables pgvector at migration (PGlite bundles it; the test server has it built from source by .ci/run)', async () => {
    const t = await freshDatabase(backend);
    try {
      expect(t.database.vectorEnabled).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('enforces unique e-mails case-insensitively', async () => {
    const t = await freshDatabase(backend);
    try {
      const { db } = t.database;
      await db.insert(users).values({ id: randomUUID(), email: 'Ann@example.com', passwordHash: 'x' });
      await expect(db.insert(users).values({ id: randomUUID(), email: 'ann@EXAMPLE.com', passwordHash: 'x' })).rejects.toThrow();
    } finally {
      await t.close();
    }
  });

  it('cascades membership rows when a workspace is deleted', async () => {
    const t = await freshDatabase(backend);
    try {
      const { db } = t.database;
      const userId = randomUUID();
      const wsId = randomUUID();
      await db.insert(users).values({ id: userId, email: 'a@example.com', passwordHash: 'x' });
      await db.insert(workspaces).values({ id: wsId, slug: 'docs', name: 'Docs', createdBy: userId });
      await db.insert(workspaceMembers).values({ workspaceId: wsId, userId, role: 'owner' });
      await db.delete(workspaces).where(eq(workspaces.id, wsId));
      expect(await db.select().from(workspaceMembers).where(eq(workspaceMembers.workspaceId, wsId))).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

describeOnPostgres('storage on the pg driver with pgvector (PostgreSQL 15)', () => {
  it('migrates through node-postgres, enables vector 0.8.x and answers a cosine query', async () => {
    const t = await freshDatabase('postgres');
    const database = await openDatabase({ url: t.url!, poolMax: 2 });
    try {
      expect(database.kind).toBe('postgres');
      await database.migrate();
      expect(database.vectorEnabled).toBe(true);
      const [ext] = rowsOf<{ v: string }>(await database.db.execute(sql`select extversion as v from pg_extension where extname = 'vector'`));
      expect(ext!.v).toMatch(/^0\.8\./); // binary_quantize, bit_hamming_ops and iterative scans need ≥ 0.8
      const q = [1, 0, 0];
      const rows = rowsOf<{ d: number }>(await database.db.execute(sql`select ${JSON.stringify(q)}::vector <=> '[1,0,1]'::vector as d`));
      expect(Number(rows[0]!.d)).toBeCloseTo(1 - 1 / Math.sqrt(2), 6);
    } finally {
      await database.close();
      await t.close();
    }
  });

  it('migrates lexical-only where the role may not create the extension, and enables vector once an admin has', async () => {
    const bare = await databaseWithoutVector();
    try {
      const database = await openDatabase({ url: bare.url, poolMax: 2 });
      try {
        await database.migrate();
        expect(database.vectorEnabled).toBe(false);
        const tables = rowsOf<{ t: string }>(await database.db.execute(sql`select table_name as t from information_schema.tables where table_schema = 'public'`)).map((r) => r.t);
        expect(tables).toEqual(expect.arrayContaining(['documents', 'chunks', 'postings']));
        expect(tables).not.toContain('chunk_embeddings');
      } finally {
        await database.close();
      }
      // An admin enables pgvector afterwards (as 0001_vector_extension.sql's comment tells them to): the next
      // migration finds it and adds the vector schema.
      const admin = new pg.Client({ connectionString: bare.adminUrl });
      await admin.connect();
      await admin.query('create extension vector').finally(() => admin.end());
      const again = await openDatabase({ url: bare.url, poolMax: 2 });
      try {
        expect(again.vectorEnabled).toBe(true);
        await again.migrate();
        const [row] = rowsOf<{ n: number }>(await again.db.execute(sql`select count(*)::int as n from information_schema.tables where table_name = 'chunk_embeddings'`));
        expect(row!.n).toBe(1);
      } finally {
        await again.close();
      }
    } finally {
      await bare.close();
    }
  });
});

describe('PGlite on the baseline WASM compiler only (DOCUPOD_PGLITE_WASM_TIERING=off)', () => {
  it('migrates and answers the same SQL, vector math included', async () => {
    const database = await openDatabase({ pgliteWasmTiering: false });
    try {
      await database.migrate();
      expect(database.vectorEnabled).toBe(true);
      const rows = rowsOf<{ d: number }>(await database.db.execute(sql`select '[1,0,0]'::vector <=> '[1,0,1]'::vector as d`));
      expect(Number(rows[0]!.d)).toBeCloseTo(1 - 1 / Math.sqrt(2), 6);
    } finally {
      await database.close();
    }
  });
});

describe('storage errors', () => {
  it('names the server and hides the password when Postgres cannot be reached', async () => {
    await expect(openDatabase({ url: 'postgres://app:s3cret@127.0.0.1:1/docupod' })).rejects.toThrow(
      /cannot connect to the database at postgres:\/\/app:<redacted>@127\.0\.0\.1:1\/docupod/,
    );
  });
});

describeOnPostgres('the Postgres pool when the server ends an idle connection', () => {
  it('logs the lost connection, keeps the process up and answers the next query on a new connection', async () => {
    const t = await freshDatabase('postgres');
    const warnings: Array<{ obj: object; msg: string }> = [];
    const database = await openDatabase({ url: t.url!, poolMax: 2, log: { warn: (obj, msg) => void warnings.push({ obj, msg }) } });
    const admin = new pg.Client({ connectionString: t.url! });
    await admin.connect();
    try {
      // The pool's one client has answered and sits idle; the server ends its session, as a restart or an admin would.
      const [{ pid }] = rowsOf<{ pid: number }>(await database.db.execute(sql`select pg_backend_pid() as pid`)) as [{ pid: number }];
      await admin.query('select pg_terminate_backend($1)', [pid]);
      for (let i = 0; i < 200 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
      expect(warnings).toEqual([
        { obj: { err: { message: expect.stringMatching(/terminat/), code: '57P01' } }, msg: 'an idle database connection was lost; the pool replaces it' },
      ]);
      const [{ other }] = rowsOf<{ other: number }>(await database.db.execute(sql`select pg_backend_pid() as other`)) as [{ other: number }];
      expect(other).not.toBe(pid);
    } finally {
      await admin.end();
      await database.close();
      await t.close();
    }
  });
});
