import { randomInt } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import type { Pool, Client } from 'pg';
import { rowsOf, type Db } from './database.js';

// A session-level advisory lock used as a liveness signal across processes. Postgres releases such a lock when the
// session that took it ends, and a session ends when its process does: on a SIGKILL or an OOM kill the kernel closes
// the socket and the backend exits; PGlite's single session lives and dies with its process. So any process can
// tell a live owner from a dead one by looking the lock up in pg_locks: no timeout, no guess from a process id that
// another container may reuse. (A host that vanishes without closing its sockets is noticed only by TCP keepalive;
// callers still need a lease as the last resort.)
//
// The key is two int4s: a fixed namespace per use and a random `id` per holder, which the holder writes into the
// rows it owns (e.g. jobs.locked_by) so others can look its lock up.

export interface SessionLock {
  /** The holder's id (second half of the key): put it in the rows this holder owns. */
  readonly id: number;
  release(): Promise<void>;
}

export interface SessionLockEvents {
  /** The connection holding the lock broke (node-postgres only); it is re-taken on a new connection. */
  onLost?: (err: Error) => void;
  onRegained?: () => void;
}

/** True when a session holds the lock (namespace, idExpr) in the current database; `idExpr` is a bigint SQL expression. */
export function sessionLockHeld(namespace: number, idExpr: SQL): SQL {
  return sql`exists (select 1 from pg_locks l where l.locktype = 'advisory' and l.granted and l.objsubid = 2
    and l.database = (select oid from pg_database where datname = current_database())
    and l.classid::bigint = ${namespace} and l.objid::bigint = ${idExpr})`;
}

/** PGlite runs in this process with a single session; node-postgres hands out connections from a pool. */
function poolOf(db: Db): Pool | undefined {
  const client = (db as unknown as { $client?: { dumpDataDir?: unknown; connect?: unknown } }).$client;
  if (!client || typeof client.dumpDataDir === 'function' || typeof client.connect !== 'function') return undefined;
  return client as Pool;
}

/** Takes a free lock in `namespace` under a random id and holds it until release() (or the process ends). */
export async function holdSessionLock(db: Db, namespace: number, events: SessionLockEvents = {}): Promise<SessionLock> {
  const pool = poolOf(db);
  if (!pool) return holdOnSharedSession(db, namespace);
  return holdOnOwnConnection(pool, namespace, events);
}

// PGlite: the process's one session. pg_try_advisory_lock succeeds again for a key this session already holds, so a
// second holder in the same process could pick a taken id unnoticed; the ids in use here are checked first.
const heldHere = new Set<string>();

async function holdOnSharedSession(db: Db, namespace: number): Promise<SessionLock> {
  for (;;) {
    const id = randomInt(1, 2 ** 31 - 1);
    const name = `${namespace}:${id}`;
    if (heldHere.has(name)) continue;
    const [r] = rowsOf<{ ok: boolean }>(await db.execute(sql`select pg_try_advisory_lock(${namespace}::int, ${id}::int) as ok`));
    if (!r?.ok) continue;
    heldHere.add(name);
    return {
      id,
      release: async () => {
        heldHere.delete(name);
        await db.execute(sql`select pg_advisory_unlock(${namespace}::int, ${id}::int)`).catch(() => {});
      },
    };
  }
}

// node-postgres: a connection of its own, outside the pool, so the lock neither takes a pool slot nor ends when the
// pool recycles an idle client.
async function holdOnOwnConnection(pool: Pool, namespace: number, events: SessionLockEvents): Promise<SessionLock> {
  const { default: pg } = await import('pg');
  let released = false;
  let client: Client | undefined;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (id?: number): Promise<number> => {
    const c = new pg.Client(pool.options); // the pool's settings, password included (a non-enumerable property)
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c, new Error('the connection holding the session lock ended')));
    await c.connect();
    try {
      for (;;) {
        const candidate = id ?? randomInt(1, 2 ** 31 - 1);
        const r = await c.query<{ ok: boolean }>('select pg_try_advisory_lock($1::int, $2::int) as ok', [namespace, candidate]);
        if (r.rows[0]?.ok) {
          client = c;
          return candidate;
        }
        // Taken: by another holder (a random clash; pick again) or, when re-taking our own id, by nobody we know.
        if (id !== undefined) throw new Error(`the session lock ${namespace}:${id} is held by another session`);
      }
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
  };

  const lost = (c: Client, err: Error) => {
    if (client !== c || released) return;
    client = undefined;
    void c.end().catch(() => {});
    events.onLost?.(err);
    let delay = 500;
    const again = () => {
      retry = setTimeout(() => {
        if (released) return;
        connect(id)
          .then(() => events.onRegained?.())
          .catch(() => {
            delay = Math.min(delay * 2, 15_000);
            again();
          });
      }, delay);
      retry.unref();
    };
    again();
  };

  const id = await connect();
  return {
    id,
    release: async () => {
      released = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      if (c) await c.end().catch(() => {}); // ending the session releases the lock
    },
  };
}
