import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import * as schema from './schema.js';
import { ensureVectorSchema } from './vector-schema.js';
import { lockDataDir } from './data-dir-lock.js';

// One typed query layer over two drivers: PGlite (embedded, in-process WASM Postgres) and node-postgres (a server).
// Callers receive `Database` and never learn which one they have, so every query runs on both.

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  /** Whether pgvector is installed in this database: without it search is lexical-only. */
  vectorEnabled: boolean;
  /** PGlite on disk: the data directory this process holds the lock of (data-dir-lock.ts) until close. */
  readonly lockedDataDir?: string;
  /** Cheap liveness query for /readyz. */
  ping(): Promise<void>;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres://… for a server; undefined for PGlite. */
  url?: string;
  /** PGlite data directory; undefined (with no url) means in-memory, as tests use. */
  dataDir?: string;
  poolMax?: number;
  /** PGlite shared_buffers in bytes (its default of 128MB dominates idle RSS). */
  pgliteSharedBuffers?: number;
  /**
   * PGlite only: let V8 tier PGlite's hot WASM functions up to optimised code (default true). False keeps V8's
   * baseline compiler only: ~40 MB less RSS, slower vector math. See DOCUPOD_PGLITE_WASM_TIERING.
   */
  pgliteWasmTiering?: boolean;
  /** PGlite only: start from a dumped data directory (tests clone a migrated snapshot this way). */
  loadDataDir?: Blob;
  /** PGlite on disk: called if the data directory's lock is lost while open (default: print and exit 1). */
  onLockLost?: (err: Error) => void;
  /** PGlite on disk: this process serves the public API (recorded with the lock, so the CLI waits for it to start). */
  servesApi?: boolean;
  /** Where the Postgres pool reports connections it lost (pino's logger fits). */
  log?: DatabaseLog;
}

export interface DatabaseLog {
  warn(obj: object, msg: string): void;
}

/** Checked-in SQL migrations; resolved from the package root so it works from src/ (tests) and dist/ (built). */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/storage/migrations');

// A fixed key so concurrent `docupod migrate` runs (e.g. two Helm hooks) serialise instead of racing.
const MIGRATION_LOCK_KEY = 7_305_118_233;

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.poolMax ?? 10, opts.log);
  // One owner per data directory: the lock is taken before PGlite touches a file and released after it closed.
  const lock = opts.dataDir && opts.dataDir !== 'memory://' ? await lockDataDir(opts.dataDir, { onCompromised: opts.onLockLost, servesApi: opts.servesApi }) : undefined;
  try {
    const database = await openPglite(opts.dataDir, opts.pgliteSharedBuffers, opts.loadDataDir, opts.pgliteWasmTiering ?? true);
    if (!lock) return database;
    const close = database.close; // the same object: migrate() updates its vectorEnabled
    return Object.assign(database, { lockedDataDir: lock.dataDir, close: () => close().finally(() => lock.release()) });
  } catch (err) {
    await lock?.release();
    throw err;
  }
}

async function detectVector(db: Db): Promise<boolean> {
  const rows = await db.execute(sql`select 1 as ok from pg_extension where extname = 'vector'`);
  return rowsOf(rows).length > 0;
}

/** drizzle's `execute` returns `{ rows }` on both drivers; this keeps call sites driver-neutral. */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

async function openPglite(dataDir: string | undefined, sharedBuffers: number | undefined, loadDataDir: Blob | undefined, wasmTiering: boolean): Promise<Database> {
  const [{ PGlite }, { vector }, { drizzle }, { migrate }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-pgvector'),
    import('drizzle-orm/pglite'),
    import('drizzle-orm/pglite/migrator'),
  ]);
  let dir: string | undefined;
  if (dataDir === 'memory://') dir = undefined; // in-memory, as tests use
  else if (dataDir) {
    dir = path.resolve(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true });
  }
  const options = {
    extensions: { vector },
    ...(sharedBuffers
      ? { startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${Math.max(128, Math.round(sharedBuffers / 1024))}kB`] }
      : {}),
    ...(loadDataDir ? { loadDataDir } : {}),
  };
  // V8 reads this flag when it compiles a WASM module, and PGlite compiles its module in create(): setting it here,
  // per instance, decides for this database only (a later instance may choose differently).
  v8.setFlagsFromString(wasmTiering ? '--no-liftoff-only' : '--liftoff-only');
  if (dir && !existsSync(path.join(dir, 'PG_VERSION'))) {
    // First start: initdb runs in a second WASM module whose heap (~400 MB RSS) stays alive with the instance that
    // ran it. Closing and reopening costs ~0.5 s once and returns the process to its normal idle footprint.
    await (await PGlite.create(dir, options)).close();
  }
  const client = await PGlite.create(dir, options);
  const db = drizzle(client, { schema }) as unknown as Db;
  const database: Database = {
    db,
    kind: 'pglite',
    vectorEnabled: false,
    ping: async () => {
      await client.query('select 1');
    },
    migrate: async () => {
      await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS_DIR });
      database.vectorEnabled = await detectVector(db);
      if (database.vectorEnabled) await ensureVectorSchema(db);
    },
    close: async () => {
      if (!client.closed) await client.close();
    },
  };
  database.vectorEnabled = await detectVector(db).catch(() => false);
  return database;
}

async function openPostgres(url: string, poolMax: number, log: DatabaseLog | undefined): Promise<Database> {
  const [{ default: pg }, { drizzle }, { migrate }] = await Promise.all([
    import('pg'),
    import('drizzle-orm/node-postgres'),
    import('drizzle-orm/node-postgres/migrator'),
  ]);
  const pool = new pg.Pool({ connectionString: url, max: poolMax, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 });
  // node-postgres emits 'error' when an idle client loses its connection (a server restart or failover, an admin
  // ending the session); with no listener the event would crash the process. The pool drops that client and opens a
  // new one when needed; the line says why queries may have waited. Message and code only: never a query or its values.
  pool.on('error', (err) =>
    log?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'an idle database connection was lost; the pool replaces it'),
  );
  // A client checked out of the pool (a transaction, the migration lock) has no pool listener while it is out, and a
  // lost connection then emits 'error' on the client itself: unheard, that killed the process (retrieval died on a
  // Postgres restart in test/stack/faults.test.ts). While out, a client has this listener instead; the failed query
  // still rejects, and the pool discards the dead client when it comes back.
  const inUseLost = (err: Error) =>
    log?.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'a database connection in use was lost; its query fails and the pool replaces it');
  pool.on('acquire', (client) => client.on('error', inUseLost));
  pool.on('release', (_err, client) => client.off('error', inUseLost));
  const db = drizzle(pool, { schema }) as unknown as Db;
  const database: Database = {
    db,
    kind: 'postgres',
    vectorEnabled: false,
    ping: async () => {
      await pool.query('select 1');
    },
    migrate: async () => {
      const lock = await pool.connect();
      try {
        await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        await migrate(drizzle(pool, { schema }), { migrationsFolder: MIGRATIONS_DIR });
        database.vectorEnabled = await detectVector(db);
        if (database.vectorEnabled) await ensureVectorSchema(db);
      } finally {
        await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
        lock.release();
      }
    },
    close: async () => {
      await pool.end();
    },
  };
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`cannot connect to the database at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err });
  }
  database.vectorEnabled = await detectVector(db).catch(() => false);
  return database;
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+)(:[^@/]*)?@/, '//$1:<redacted>@');
}
