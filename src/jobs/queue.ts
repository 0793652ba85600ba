import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import type { z } from 'zod';
import { DocupodError, Problems } from '../core/errors.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { Gauge, Histogram, metric, type Registry } from '../observability/metrics.js';
import { rowsOf, type Db } from '../storage/database.js';
import { jobs } from '../storage/schema-documents.js';
import { holdSessionLock, sessionLockHeld, type SessionLock } from '../storage/session-lock.js';

// A durable job queue in Postgres (no extra service): a job is claimed with FOR UPDATE SKIP LOCKED and a lease;
// the worker heartbeats while it runs; a worker that dies simply lets its lease expire and another (or the same,
// after a restart) picks the job up again. Handlers must therefore be idempotent. Retries back off exponentially
// up to max_attempts; an error marked `retryable: false` fails at once.
//
// Ownership: a claim writes the worker's id into locked_by and counts the attempt. Every later write about the job
// (heartbeat, done, retry, failed, hand-back, and the handler's own writes through JobContext.holdsLease/lockLease)
// requires the same worker id *and* attempt number, so a worker whose lease ran out and was claimed again (by another
// worker, or by another loop of this one) changes nothing of the new owner's job.
//
// Dead workers: each started queue holds a session-level advisory lock (src/storage/session-lock.ts) whose id is
// part of its worker id (`host:pid:L<id>`). Postgres drops that lock when the worker's process dies, so at start a
// queue requeues exactly the `running` jobs whose owner's lock is gone: a restart resumes in milliseconds, on PGlite
// and on a shared Postgres alike, and a job of a live process (another pod, a CLI) is never touched, however long
// it runs. Jobs whose owner cannot be checked (a worker id without a lock id, written by an older version) wait out
// their lease. Lease expiry stays the last resort (a host that vanished without closing its connections): workers
// heartbeat every lease/3, so a live worker keeps its jobs; a pod that stops gracefully hands its jobs back at once.
// A crash still counts as an attempt: a file that kills its worker every time must not loop forever, so a job
// taken over after its attempts are used up fails with a reason instead of running again.

/** First half of the advisory-lock key of worker liveness locks ('docp'). */
export const WORKER_LOCK_NAMESPACE = 0x646f6370;

export interface JobContext {
  jobId: string;
  attempt: number;
  /** Aborted when the queue stops or the lease is lost. */
  signal: AbortSignal;
  /** Extends the lease; call it between steps of long work. Throws (and aborts `signal`) when the lease was lost. */
  heartbeat(): Promise<void>;
  /**
   * A SQL condition, true while this attempt still holds the job's lease: add it to the WHERE of the handler's own
   * writes (progress and the like), so a worker whose job was taken over overwrites nothing of the new owner's.
   */
  holdsLease: SQL;
  /**
   * Inside a transaction: locks the job's row and tells whether this attempt still holds the lease. Until the
   * transaction ends nobody can take the job over, so a final commit made after `true` is the owner's.
   */
  lockLease(tx: Db): Promise<boolean>;
}

export type JobHandler<P> = (payload: P, ctx: JobContext) => Promise<void>;

interface Registration {
  schema: z.ZodType;
  handler: JobHandler<unknown>;
  concurrency: number;
  /** Called once when a job gives up for good, so the owner can record the reason (e.g. document → failed). */
  onFailed?: (payload: unknown, reason: string, err: unknown) => Promise<void>;
}

export interface QueueOptions {
  db: Db;
  log: Logger;
  metrics: Registry;
  leaseMs?: number;
  pollMs?: number;
  /** Base of the exponential backoff between attempts. */
  backoffMs?: number;
}

export class JobQueue {
  private readonly registrations = new Map<string, Registration>();
  /** `host:pid:L<lock id>` once started (see the header); the lock id lets other processes check that it lives. */
  private workerId = '';
  private liveness: SessionLock | undefined;
  private starting: Promise<void> = Promise.resolve();
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly backoffMs: number;
  private readonly running = new Set<Promise<void>>();
  private controller = new AbortController();
  private loops: Promise<void>[] = [];
  /** Wakes every idle loop (each registers itself while it sleeps), so an enqueue is picked up at once. */
  private readonly sleepers = new Set<() => void>();
  private readonly wake = () => {
    for (const w of [...this.sleepers]) w();
  };
  private readonly m: { wait: Histogram<'name'>; run: Histogram<'name' | 'outcome'>; depth: Gauge<'name' | 'state'> };

  constructor(private readonly opts: QueueOptions) {
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.pollMs = opts.pollMs ?? 500;
    this.backoffMs = opts.backoffMs ?? 2_000;
    const db = opts.db;
    const registrations = this.registrations;
    this.m = {
      wait: metric(opts.metrics, 'docupod_jobs_wait_seconds', () => new Histogram({ name: 'docupod_jobs_wait_seconds', help: 'Time from enqueue (or retry time) to a worker picking the job up', labelNames: ['name'] as const, buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers: [opts.metrics] })),
      run: metric(opts.metrics, 'docupod_jobs_run_seconds', () => new Histogram({ name: 'docupod_jobs_run_seconds', help: 'Job run time by outcome (done, retry, failed; lost: the lease was taken over meanwhile)', labelNames: ['name', 'outcome'] as const, buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800], registers: [opts.metrics] })),
      depth: metric(opts.metrics, 'docupod_jobs_queue_depth', () => new Gauge({
        name: 'docupod_jobs_queue_depth',
        help: 'Jobs waiting or running, by name and state',
        labelNames: ['name', 'state'] as const,
        registers: [opts.metrics],
        // Every registered job name reports both states, 0 when idle: a series that vanished whenever the queue
        // drained would read as "no data" on a dashboard, the same as a target that is not scraped.
        async collect() {
          this.reset();
          for (const name of registrations.keys()) for (const state of ['queued', 'running']) this.set({ name, state }, 0);
          const rows = rowsOf<{ name: string; state: string; n: number }>(
            await db.execute(sql`select name, state, count(*)::int as n from ${jobs} where state in ('queued', 'running') group by 1, 2`),
          );
          for (const r of rows) this.set({ name: r.name, state: r.state }, Number(r.n));
        },
      })),
    };
  }

  register<S extends z.ZodType>(name: string, schema: S, handler: JobHandler<z.output<S>>, opts: { concurrency?: number; onFailed?: (payload: z.output<S>, reason: string, err: unknown) => Promise<void> } = {}): void {
    this.registrations.set(name, { schema, handler: handler as JobHandler<unknown>, concurrency: opts.concurrency ?? 1, onFailed: opts.onFailed as Registration['onFailed'] });
  }

  /** Adds a job; pass a transaction as `db` to enqueue atomically with the rows it concerns. */
  async enqueue(name: string, payload: unknown, opts: { workspaceId?: string; maxAttempts?: number; db?: Db } = {}): Promise<string> {
    const id = randomUUID();
    await (opts.db ?? this.opts.db).insert(jobs).values({ id, name, payload, workspaceId: opts.workspaceId, maxAttempts: opts.maxAttempts ?? 5 });
    this.wake();
    return id;
  }

  /** Cancels queued jobs of a name whose payload matches (running ones see it at their next state check). */
  async cancelWhere(name: string, payloadField: string, value: string): Promise<void> {
    await this.opts.db
      .update(jobs)
      .set({ state: 'cancelled', updatedAt: sql`now()`, finishedAt: sql`now()` })
      .where(and(eq(jobs.name, name), inArray(jobs.state, ['queued']), sql`${jobs.payload}->>${payloadField} = ${value}`));
  }

  start(): void {
    this.controller = new AbortController();
    // The liveness lock comes first (claims write the worker id it is part of), then orphans go back to the queue
    // before the first claim, so a restart picks them up at once.
    this.starting = this.holdLiveness().then(() =>
      this.recoverOrphans()
        .then(() => undefined)
        .catch((err: unknown) => this.opts.log.error({ err }, 'could not requeue jobs of a previous process')),
    );
    for (const [name, reg] of this.registrations)
      for (let i = 0; i < reg.concurrency; i++) this.loops.push(this.starting.then(() => this.loop(name, reg)));
  }

  /** Takes this queue's liveness lock (retrying while the database is unreachable) and derives the worker id. */
  private async holdLiveness(): Promise<void> {
    const log = this.opts.log;
    while (!this.controller.signal.aborted) {
      try {
        this.liveness = await holdSessionLock(this.opts.db, WORKER_LOCK_NAMESPACE, {
          // Until it is back, another process starting up would take this worker for dead and requeue its jobs; the
          // ownership checks then stop this worker from writing anything of them (its heartbeats fail).
          onLost: (err) => log.warn({ err: err.message }, 'lost the connection holding the job workers liveness lock; reconnecting'),
          onRegained: () => log.info('job workers liveness lock held again'),
        });
        this.workerId = `${hostname()}:${process.pid}:L${this.liveness.id}`;
        return;
      } catch (err) {
        if (this.controller.signal.aborted) return;
        log.error({ err }, 'could not take the job workers liveness lock; retrying');
        await this.sleep(this.pollMs * 4);
      }
    }
  }

  /**
   * Requeues jobs left `running` by workers whose process is gone (their liveness lock is free); jobs of live
   * workers, in this process or any other, stay with them. Returns how many were requeued.
   */
  async recoverOrphans(): Promise<number> {
    const ownerId = sql`substring(locked_by from ':L([0-9]+)$')::bigint`;
    const ownerDead = sql`(locked_by ~ ':L[0-9]+$' and not ${sessionLockHeld(WORKER_LOCK_NAMESPACE, ownerId)})`;
    const orphan = sql`state = 'running' and (locked_by is null or ${ownerDead})`;
    // Attempts used up by crashes: fail with the reason rather than run (and maybe crash) once more.
    const reason = (n: number) => `the worker stopped ${n} times while running this job without finishing (crash, out of memory or kill); giving up`;
    const exhausted = rowsOf<{ id: string; name: string; payload: unknown; attempts: number }>(
      await this.opts.db.execute(sql`update ${jobs} set state = 'failed', last_error = 'worker stopped while running the job', locked_by = null,
          locked_until = null, finished_at = now(), updated_at = now()
        where ${orphan} and attempts >= max_attempts returning id, name, payload, attempts`),
    );
    for (const j of exhausted) {
      const err = new DocupodError(Problems.unprocessable, reason(j.attempts), { retryable: false });
      await this.registrations.get(j.name)?.onFailed?.(j.payload, err.message, err).catch((e: unknown) => this.opts.log.error({ err: e, jobId: j.id }, 'onFailed hook failed'));
    }
    const rows = rowsOf<{ id: string }>(
      await this.opts.db.execute(sql`update ${jobs} set state = 'queued', locked_by = null, locked_until = null, updated_at = now()
        where ${orphan} returning id`),
    );
    if (rows.length + exhausted.length > 0)
      this.opts.log.warn({ requeued: rows.length, failed: exhausted.length }, 'recovered jobs left running by a process that is gone');
    return rows.length;
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.wake();
    await this.starting.catch(() => {});
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.running]);
    this.loops = [];
    // Last: while the lock is held, nobody requeues the jobs this queue is still handing back.
    await this.liveness?.release();
    this.liveness = undefined;
  }

  private async sleep(ms: number): Promise<void> {
    const signal = this.controller.signal;
    if (signal.aborted) return;
    await new Promise<void>((resolve) => {
      // The abort listener is removed on every wake-up: idle loops sleep twice a second, and listeners left behind
      // would pile up on the queue's signal for as long as the process runs.
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.sleepers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.sleepers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private async loop(name: string, reg: Registration): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      let claimed: ClaimedJob | undefined;
      try {
        claimed = await this.claim(name);
      } catch (err) {
        if (signal.aborted) return;
        this.opts.log.error({ err, job: name }, 'could not claim a job; retrying');
        await this.sleep(this.pollMs * 4);
        continue;
      }
      if (!claimed) {
        await this.sleep(this.pollMs);
        continue;
      }
      const p = this.execute(name, reg, claimed);
      this.running.add(p);
      await p;
      this.running.delete(p);
    }
  }

  private async claim(name: string): Promise<ClaimedJob | undefined> {
    const lease = `${this.leaseMs} milliseconds`;
    // A job is claimable when queued and due, or when its worker's lease ran out (that worker died).
    // `takenOver` marks a job whose previous worker died (its lease expired): its attempt counter then includes the
    // attempts that crashed.
    const rows = rowsOf<ClaimedJob>(
      await this.opts.db.execute(sql`
        with next as (
          select id, state = 'running' as taken_over from ${jobs}
          where name = ${name} and ((state = 'queued' and run_at <= now()) or (state = 'running' and locked_until < now()))
          order by run_at limit 1 for update skip locked)
        update ${jobs} j set state = 'running', attempts = j.attempts + 1, locked_by = ${this.workerId},
          locked_until = now() + ${lease}::interval, updated_at = now()
        from next where j.id = next.id
        returning j.id, j.payload, j.attempts, j.max_attempts as "maxAttempts", next.taken_over as "takenOver",
          extract(epoch from (now() - j.run_at))::float8 as "waitSeconds"`),
    );
    return rows[0];
  }

  private async execute(name: string, reg: Registration, job: ClaimedJob): Promise<void> {
    const log = this.opts.log.child({ job: name, jobId: job.id, attempt: job.attempts });
    this.m.wait.observe({ name }, Math.max(0, Number(job.waitSeconds)));
    const t0 = performance.now();
    const local = new AbortController();
    const onStop = () => local.abort();
    this.controller.signal.addEventListener('abort', onStop, { once: true });
    // This claim and no other: the worker id alone would also match a later claim of the same job by another loop
    // of this queue after the lease ran out; the attempt number tells them apart.
    const owned = sql`jobs.id = ${job.id} and jobs.locked_by = ${this.workerId} and jobs.attempts = ${job.attempts} and jobs.state = 'running'`;
    const holdsLease = sql`exists (select 1 from ${jobs} where ${owned})`;
    /** Runs a write guarded by `owned`; false when the job is no longer this attempt's. */
    const whileOwned = async (db: Db, set: SQL): Promise<boolean> =>
      rowsOf(await db.execute(sql`update ${jobs} set ${set} where ${owned} returning id`)).length > 0;
    const heartbeat = async () => {
      if (!(await whileOwned(this.opts.db, sql`locked_until = now() + ${`${this.leaseMs} milliseconds`}::interval`))) {
        local.abort();
        throw new Error('lease lost: the job was taken over or cancelled');
      }
    };
    const lockLease = async (tx: Db) => rowsOf(await tx.execute(sql`select id from ${jobs} where ${owned} for update`)).length > 0;
    const timer = setInterval(() => void heartbeat().catch(() => {}), Math.max(1000, this.leaseMs / 3));
    const lost = (outcome: string) => {
      log.warn({ outcome }, 'lease lost while the job ran (taken over after it expired): its new owner carries on, this attempt wrote nothing');
      this.m.run.observe({ name, outcome: 'lost' }, (performance.now() - t0) / 1000);
    };
    try {
      if (job.takenOver && job.attempts > job.maxAttempts) {
        throw new DocupodError(
          Problems.unprocessable,
          `the worker stopped ${job.attempts - 1} times while running this job without finishing (crash, out of memory or kill); giving up`,
          { retryable: false },
        );
      }
      const payload = reg.schema.parse(job.payload);
      await reg.handler(payload, { jobId: job.id, attempt: job.attempts, signal: local.signal, heartbeat, holdsLease, lockLease });
      if (!(await whileOwned(this.opts.db, sql`state = 'done', locked_by = null, locked_until = null, finished_at = now(), updated_at = now()`)))
        return lost('done');
      this.m.run.observe({ name, outcome: 'done' }, (performance.now() - t0) / 1000);
    } catch (err) {
      if (this.controller.signal.aborted) {
        // Shutting down: give the job back without counting the attempt, so a restart continues it.
        await whileOwned(this.opts.db, sql`state = 'queued', attempts = greatest(attempts - 1, 0), locked_by = null, locked_until = null, updated_at = now()`).catch(() => {});
        return;
      }
      // Logged, stored as the job's last error and shown as the document's: never a failed query's parameters.
      const reason = errorMessage(err);
      const permanent = (err instanceof DocupodError && err.extra.retryable === false) || job.attempts >= job.maxAttempts;
      if (permanent) {
        if (!(await whileOwned(this.opts.db, sql`state = 'failed', last_error = ${reason}, locked_by = null, locked_until = null, finished_at = now(), updated_at = now()`)))
          return lost('failed');
        log.warn({ reason }, 'job failed');
        await reg.onFailed?.(job.payload, reason, err).catch((e: Error) => log.error({ err: e }, 'onFailed hook failed'));
        this.m.run.observe({ name, outcome: 'failed' }, (performance.now() - t0) / 1000);
      } else {
        const delay = this.backoffMs * 2 ** (job.attempts - 1);
        const retried = await whileOwned(
          this.opts.db,
          sql`state = 'queued', last_error = ${reason}, locked_by = null, locked_until = null, run_at = now() + ${`${delay} milliseconds`}::interval, updated_at = now()`,
        );
        if (!retried) return lost('retry');
        log.warn({ reason, retryInMs: delay }, 'job failed; will retry');
        this.m.run.observe({ name, outcome: 'retry' }, (performance.now() - t0) / 1000);
      }
    } finally {
      clearInterval(timer);
      this.controller.signal.removeEventListener('abort', onStop);
    }
  }
}

interface ClaimedJob {
  id: string;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  takenOver: boolean;
  waitSeconds: number;
}
