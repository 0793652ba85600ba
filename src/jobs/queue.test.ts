import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { backends, freshDatabase, testDatabaseUrl, type Backend, type TestDatabase } from '../../test/fixtures/database.js';
import { DocupodError, Problems } from '../core/errors.js';
import { silentLogger } from '../observability/logger.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import { openDatabase, rowsOf, type Database, type Db } from '../storage/database.js';
import { JobQueue, WORKER_LOCK_NAMESPACE, type JobContext, type QueueOptions } from './queue.js';

// The queue on a real database: in-memory PGlite always, Postgres too when DOCUPOD_TEST_DATABASE_URL is set. A dead
// process is simulated by the row a crashed worker leaves behind: state running, a lease far in the future and a
// worker id whose liveness lock nobody holds; a live one elsewhere by a worker id whose lock is held on another
// connection, by a second queue on its own connection pool, or (Postgres) by a worker in a child process.

const Payload = z.object({ n: z.number() });
let db: TestDatabase | undefined;
const queues: JobQueue[] = [];
const cleanups: Array<() => Promise<void>> = [];

/** Openers of every gate a test made: a failed expectation must not leave a handler waiting, stop would wait for it. */
const gates: Array<() => void> = [];

afterEach(async () => {
  for (const open of gates.splice(0)) open();
  await Promise.all(queues.splice(0).map((q) => q.stop()));
  for (const c of cleanups.splice(0).reverse()) await c();
  await db?.close();
  db = undefined;
});

function queue(opts: Partial<QueueOptions> = {}) {
  const q = new JobQueue({ db: db!.database.db, log: silentLogger(), metrics: createMetricsRegistry({ defaultMetrics: false }), pollMs: 20, backoffMs: 10, ...opts });
  queues.push(q);
  return q;
}

/** A log that the test can read: one parsed object per line. */
function capturedLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/**
 * The same database as another process sees it: on Postgres a pool of its own (its own sessions); PGlite serves a
 * single process and session, so there it is the same handle.
 */
async function asAnotherProcess(): Promise<Db> {
  if (!db!.url) return db!.database.db;
  const other: Database = await openDatabase({ url: db!.url, poolMax: 2 });
  cleanups.push(() => other.close());
  return other.db;
}

/** Holds a worker liveness lock as a live process elsewhere would, on a connection of its own where there is one. */
async function holdWorkerLock(id: number): Promise<void> {
  if (!db!.url) {
    await db!.database.db.execute(sql`select pg_advisory_lock(${WORKER_LOCK_NAMESPACE}::int, ${id}::int)`);
    cleanups.push(async () => void (await db!.database.db.execute(sql`select pg_advisory_unlock(${WORKER_LOCK_NAMESPACE}::int, ${id}::int)`)));
    return;
  }
  const c = new pg.Client({ connectionString: db!.url });
  await c.connect();
  await c.query('select pg_advisory_lock($1::int, $2::int)', [WORKER_LOCK_NAMESPACE, id]);
  cleanups.push(() => c.end());
}

async function leftRunning(q: JobQueue, n: number, lockedBy: string, attempts = 1, maxAttempts = 5): Promise<string> {
  const id = await q.enqueue('t', { n }, { maxAttempts });
  await db!.database.db.execute(sql`update jobs set state = 'running', attempts = ${attempts}, locked_by = ${lockedBy},
    locked_until = now() + interval '1 hour' where id = ${id}`);
  return id;
}
/** A row left by a worker whose process died: nobody holds lock id 777. */
const orphan = (q: JobQueue, n: number, attempts = 1, maxAttempts = 5) => leftRunning(q, n, 'deadhost:1234:L777', attempts, maxAttempts);

const jobRow = async (id: string) =>
  rowsOf<{ state: string; attempts: number; last_error: string | null; locked_by: string | null }>(
    await db!.database.db.execute(sql`select state, attempts, last_error, locked_by from jobs where id = ${id}`),
  )[0]!;

async function until(check: () => Promise<boolean> | boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

/** A promise with its resolve, to hold a handler inside its job until the test lets it go. */
function gate() {
  let open!: () => void;
  const p = new Promise<void>((res) => (open = res));
  gates.push(open);
  return { p, open };
}

describe.each(backends())('JobQueue on %s', (backend: Backend) => {
  it('reports the queue depth of every registered job, 0 when the queue is idle', async () => {
    db = await freshDatabase(backend);
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const q = queue({ metrics });
    q.register('t', Payload, async () => {});
    const depth = async () => (await metrics.getSingleMetric('docupod_jobs_queue_depth')!.get()).values.map((v) => `${v.labels.name} ${v.labels.state} ${v.value}`).sort();
    expect(await depth()).toEqual(['t queued 0', 't running 0']);
    await q.enqueue('t', { n: 1 });
    expect(await depth()).toEqual(['t queued 1', 't running 0']);
  });

  it('runs a job left running by a dead process at once, without waiting for its lease', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    const seen: number[] = [];
    q.register('t', Payload, async (p) => void seen.push(p.n));
    const id = await orphan(q, 7);
    const t0 = Date.now();
    q.start();
    await until(async () => (await jobRow(id)).state === 'done');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(seen).toEqual([7]);
    expect((await jobRow(id)).attempts).toBe(2); // the crashed attempt counts
  });

  it('leaves a running job of a live worker in another process alone, however much lease it has left', async () => {
    db = await freshDatabase(backend);
    await holdWorkerLock(4242);
    const q = queue();
    let ran = 0;
    q.register('t', Payload, async () => void ran++);
    const id = await leftRunning(q, 1, 'otherhost:99:L4242');
    expect(await q.recoverOrphans()).toBe(0);
    q.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(await jobRow(id)).toMatchObject({ state: 'running', locked_by: 'otherhost:99:L4242' });
    expect(ran).toBe(0);
  });

  it('leaves the jobs of a second live queue alone when a queue starts beside it', async () => {
    db = await freshDatabase(backend);
    const release = gate();
    const a = new JobQueue({ db: await asAnotherProcess(), log: silentLogger(), metrics: createMetricsRegistry({ defaultMetrics: false }), pollMs: 20 });
    queues.push(a);
    let started = 0;
    a.register('t', Payload, async () => {
      started++;
      await release.p;
    });
    const id = await a.enqueue('t', { n: 1 });
    a.start();
    await until(async () => (await jobRow(id)).state === 'running');
    const owner = (await jobRow(id)).locked_by;
    const b = queue();
    b.register('t', Payload, async () => void started++);
    expect(await b.recoverOrphans()).toBe(0);
    b.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(await jobRow(id)).toMatchObject({ state: 'running', locked_by: owner });
    release.open();
    await until(async () => (await jobRow(id)).state === 'done');
    expect(started).toBe(1);
  });

  it('fails, with a reason, a job whose worker died on every attempt', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    const failed: Array<{ n: number; reason: string }> = [];
    let ran = 0;
    q.register('t', Payload, async () => void ran++, { onFailed: async (p, reason) => void failed.push({ n: p.n, reason }) });
    const id = await orphan(q, 3, 3, 3);
    q.start();
    await until(async () => (await jobRow(id)).state === 'failed');
    await until(async () => failed.length === 1);
    expect(ran).toBe(0);
    expect(failed[0]!.reason).toMatch(/stopped 3 times/);
  });

  it('waits for the lease when the owner cannot be checked (a worker id without a lock id), then takes the job over', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    const seen: number[] = [];
    q.register('t', Payload, async (p) => void seen.push(p.n));
    const id = await leftRunning(q, 9, 'oldhost:1234:abcd1234');
    await db.database.db.execute(sql`update jobs set locked_until = now() + interval '400 milliseconds' where id = ${id}`);
    q.start();
    await new Promise((r) => setTimeout(r, 150));
    expect((await jobRow(id)).state).toBe('running'); // it may be alive: only its lease can tell
    await until(async () => (await jobRow(id)).state === 'done');
    expect(seen).toEqual([9]);
  });

  it('retries with backoff and fails after max attempts, calling onFailed once', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    let calls = 0;
    const failed: string[] = [];
    q.register('t', Payload, async () => {
      calls++;
      throw new Error('boom');
    }, { onFailed: async (_p, reason) => void failed.push(reason) });
    const id = await q.enqueue('t', { n: 1 }, { maxAttempts: 3 });
    q.start();
    await until(async () => (await jobRow(id)).state === 'failed');
    await until(async () => failed.length === 1);
    expect(calls).toBe(3);
    expect(failed).toEqual(['boom']);
  });

  // A's lease runs out while its handler is still busy; B claims the job. Whatever A's attempt does afterwards
  // (finish, fail for a retry, fail for good) must leave B's job as B has it.
  const outcomes: Array<[string, () => Error | undefined]> = [
    ['finishes', () => undefined],
    ['fails and would retry', () => new Error('A gave up')],
    ['fails for good', () => new DocupodError(Problems.unprocessable, 'A failed for good', { retryable: false })],
  ];
  it.each(outcomes)('a worker whose lease was taken over writes nothing of the new owner\'s job when it %s', async (_what, outcome) => {
    db = await freshDatabase(backend);
    const aLog = capturedLog();
    const a = new JobQueue({ db: await asAnotherProcess(), log: aLog.log, metrics: createMetricsRegistry({ defaultMetrics: false }), pollMs: 20, backoffMs: 10 });
    queues.push(a);
    const aGate = gate();
    const bGate = gate();
    const aFailed: string[] = [];
    let aCtx: JobContext | undefined;
    a.register('t', Payload, async (_p, ctx) => {
      aCtx = ctx;
      await aGate.p;
      const err = outcome();
      if (err) throw err;
    }, { onFailed: async (_p, reason) => void aFailed.push(reason) });
    let bCtx: JobContext | undefined;
    const b = queue();
    b.register('t', Payload, async (_p, ctx) => {
      bCtx = ctx;
      await bGate.p;
    });
    const id = await a.enqueue('t', { n: 1 });
    a.start();
    await until(() => aCtx !== undefined);
    const aOwner = (await jobRow(id)).locked_by;
    // A's lease expires (as if its heartbeats had stalled), and B takes the job over.
    await db.database.db.execute(sql`update jobs set locked_until = now() - interval '1 second' where id = ${id}`);
    b.start();
    await until(() => bCtx !== undefined);
    const taken = await jobRow(id);
    expect(taken.locked_by).not.toBe(aOwner);
    expect(taken.attempts).toBe(2);

    // A learns it at its next heartbeat and its own guarded writes match nothing; B's match.
    await expect(aCtx!.heartbeat()).rejects.toThrow(/lease lost/);
    expect(aCtx!.signal.aborted).toBe(true);
    const held = async (ctx: JobContext) => rowsOf<{ held: boolean }>(await db!.database.db.execute(sql`select ${ctx.holdsLease} as held`))[0]!.held;
    expect(await held(aCtx!)).toBe(false);
    expect(await held(bCtx!)).toBe(true);

    aGate.open();
    await until(() => aLog.lines.some((l) => String(l.msg).startsWith('lease lost while the job ran')));
    expect(await jobRow(id)).toMatchObject({ state: 'running', locked_by: taken.locked_by, attempts: 2, last_error: null });
    expect(aFailed).toEqual([]);
    bGate.open();
    await until(async () => (await jobRow(id)).state === 'done');
    expect((await jobRow(id)).last_error).toBeNull();
  });

  it('an attempt whose job this same worker claimed again after the lease ran out cannot finish the new attempt', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    const gates = [gate(), gate()];
    const ctxs: JobContext[] = [];
    q.register('t', Payload, async (_p, ctx) => {
      ctxs.push(ctx);
      await gates[ctxs.length - 1]!.p;
    }, { concurrency: 2 });
    const id = await q.enqueue('t', { n: 1 });
    q.start();
    await until(() => ctxs.length === 1);
    await db.database.db.execute(sql`update jobs set locked_until = now() - interval '1 second' where id = ${id}`);
    await until(() => ctxs.length === 2); // the queue's second loop took it over: same worker id, attempt 2
    gates[0]!.open();
    await new Promise((r) => setTimeout(r, 200));
    expect(await jobRow(id)).toMatchObject({ state: 'running', attempts: 2 });
    gates[1]!.open();
    await until(async () => (await jobRow(id)).state === 'done');
  });

  it('lockLease tells, inside a transaction, whether this attempt still holds the job', async () => {
    db = await freshDatabase(backend);
    const q = queue();
    const done = gate();
    let ctx: JobContext | undefined;
    q.register('t', Payload, async (_p, c) => {
      ctx = c;
      await done.p;
    });
    const id = await q.enqueue('t', { n: 1 });
    q.start();
    await until(() => ctx !== undefined);
    expect(await db.database.db.transaction(async (tx) => ctx!.lockLease(tx as unknown as Db))).toBe(true);
    await db.database.db.execute(sql`update jobs set locked_by = 'someone:else:L1', attempts = attempts + 1 where id = ${id}`);
    expect(await db.database.db.transaction(async (tx) => ctx!.lockLease(tx as unknown as Db))).toBe(false);
    done.open();
  });
});

/** A queue worker in a child process (test/fixtures/queue-worker.ts); resolves once it is running a job. */
async function spawnQueueWorker(url: string, job: string): Promise<{ child: ChildProcess; jobId: string; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/fixtures/queue-worker.ts')], {
    env: { PATH: process.env.PATH, DOCUPOD_QUEUE_WORKER_URL: url, DOCUPOD_QUEUE_WORKER_JOB: job },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const jobId = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the queue worker did not start a job:\n${err}`)), 20_000);
    void exited.then(() => reject(new Error(`the queue worker exited:\n${err}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      clearTimeout(t);
      resolve((JSON.parse(line) as { running: string }).running);
    });
  });
  return { child, jobId, exited };
}

describe.skipIf(!testDatabaseUrl())('JobQueue with a worker in another process (Postgres)', () => {
  it('never requeues the job of a live worker process, and takes it over at once when that process is killed', async () => {
    db = await freshDatabase('postgres');
    const q = queue();
    const seen: number[] = [];
    q.register('t', Payload, async (p) => void seen.push(p.n));
    const id = await q.enqueue('t', { n: 5 });
    const worker = await spawnQueueWorker(db.url!, 't');
    cleanups.push(async () => void worker.child.kill('SIGKILL'));
    expect(worker.jobId).toBe(id);
    const owner = (await jobRow(id)).locked_by;
    expect(owner).toMatch(/:L\d+$/);

    // The other process lives: starting a queue here changes nothing of its job (its lease has ~60 s left anyway,
    // so only an owner check, not the lease, could wrongly take it).
    expect(await q.recoverOrphans()).toBe(0);
    q.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(await jobRow(id)).toMatchObject({ state: 'running', locked_by: owner, attempts: 1 });
    expect(seen).toEqual([]);

    // Killed: its session ends, its lock goes, and the next recovery requeues the job without waiting the lease.
    worker.child.kill('SIGKILL');
    await worker.exited;
    const t0 = Date.now();
    await until(async () => (await q.recoverOrphans()) === 1, 10_000);
    await until(async () => (await jobRow(id)).state === 'done');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(seen).toEqual([5]);
    expect((await jobRow(id)).attempts).toBe(2);
  }, 40_000);
});
