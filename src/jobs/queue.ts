import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { DocupodError, Problems } from '../core/errors.js';
import { errorMessage, type Logger } from '../observability/logger.js';
import { Gauge, Histogram, metric, type Registry } from '../observability/metrics.js';
import { rowsOf, type Db } from '../storage/database.js';
import { jobs } from '../storage/schema-documents.js';

// A durable job queue in Postgres (no extra service): a job is claimed with FOR UPDATE SKIP LOCKED and a lease;
// the worker heartbeats while it runs; a worker that dies simply lets its lease expire and another (or the same,
// after a restart) picks the job up again. Handlers must therefore be idempotent. Retries back off exponentially
// up to max_attempts; an error marked `retryable: false` fails at once.
//
// Dead workers, two cases:
// - Embedded (PGlite): one process owns the data directory, so at start every job still marked `running` by a
//   worker id that is not alive in this process belongs to a process that died (SIGKILL, OOM, power loss). Those
//   jobs are requeued at once instead of waiting out their lease (60 s by default): a restart resumes in
//   milliseconds. This is only safe because nobody else can hold the database; see `exclusive`.
// - Shared Postgres (split roles, several pods): another live pod may be running any `running` job, and we cannot
//   tell a slow worker from a dead one without a liveness signal, so expiry of the lease is that signal. Workers
//   heartbeat every lease/3, so a live worker never loses a job, and a dead one's jobs wait at most one lease. A
//   shorter lease (DOCUPOD_… via QueueOptions.leaseMs) trades faster takeover for more heartbeat writes; a pod
//   that stops gracefully hands its jobs back immediately (see `stop`).
// A crash still counts as an attempt: a file that kills its worker every time must not loop forever, so a job
// taken over after its attempts are used up fails with a reason instead of running again.

export interface JobContext {
  jobId: string;
  attempt: number;
  /** Aborted when the queue stops or the lease is lost. */
  signal: AbortSignal;
  /** Extends the lease; call it between steps of long work. */
  heartbeat(): Promise<void>;
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
  /**
   * True when this process is the only one that can use the database (embedded PGlite): jobs left `running` by
   * workers not alive in this process are then requeued at start. Never set it for a shared Postgres server.
   * Default: true exactly when the driver is PGlite.
   */
  exclusive?: boolean;
}

/** Worker ids of queues started in this process (tests run several queues on one database in one process). */
const liveWorkers = new Set<string>();

/** PGlite is a single-process database: drizzle's client for it can dump its data directory, node-postgres cannot. */
function isSingleProcessDb(db: Db): boolean {
  const client = (db as unknown as { $client?: { dumpDataDir?: unknown } }).$client;
  return typeof client?.dumpDataDir === 'function';
}

export class JobQueue {
  private readonly registrations = new Map<string, Registration>();
  private readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
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
    this.m = {
      wait: metric(opts.metrics, 'docupod_jobs_wait_seconds', () => new Histogram({ name: 'docupod_jobs_wait_seconds', help: 'Time from enqueue (or retry time) to a worker picking the job up', labelNames: ['name'] as const, buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300], registers: [opts.metrics] })),
      run: metric(opts.metrics, 'docupod_jobs_run_seconds', () => new Histogram({ name: 'docupod_jobs_run_seconds', help: 'Job run time by outcome (done, retry, failed)', labelNames: ['name', 'outcome'] as const, buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800], registers: [opts.metrics] })),
      depth: metric(opts.metrics, 'docupod_jobs_queue_depth', () => new Gauge({
        name: 'docupod_jobs_queue_depth',
        help: 'Jobs waiting or running, by name and state',
        labelNames: ['name', 'state'] as const,
        registers: [opts.metrics],
        async collect() {
          this.reset();
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
    liveWorkers.add(this.workerId);
    // Orphans go back to the queue before the first claim, so a restart picks them up at once.
    const recovered = this.recoverOrphans().catch((err: unknown) => this.opts.log.error({ err }, 'could not requeue jobs of a previous process'));
    for (const [name, reg] of this.registrations)
      for (let i = 0; i < reg.concurrency; i++) this.loops.push(recovered.then(() => this.loop(name, reg)));
  }

  /**
   * Embedded mode only: requeues jobs that a previous process (same data directory) was running when it died.
   * Returns how many were requeued.
   */
  async recoverOrphans(): Promise<number> {
    if (!(this.opts.exclusive ?? isSingleProcessDb(this.opts.db))) return 0;
    const live = [...liveWorkers];
    const notLive = live.length > 0 ? sql`locked_by not in (${sql.join(live.map((w) => sql`${w}`), sql`, `)})` : sql`true`;
    const orphan = sql`state = 'running' and (locked_by is null or ${notLive})`;
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
      this.opts.log.warn({ requeued: rows.length, failed: exhausted.length }, 'recovered jobs left running by a previous process');
    return rows.length;
  }

  async stop(): Promise<void> {
    liveWorkers.delete(this.workerId);
    this.controller.abort();
    this.wake();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.running]);
    this.loops = [];
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
    const heartbeat = async () => {
      const r = rowsOf(
        await this.opts.db.execute(sql`update ${jobs} set locked_until = now() + ${`${this.leaseMs} milliseconds`}::interval
          where id = ${job.id} and locked_by = ${this.workerId} and state = 'running' returning id`),
      );
      if (r.length === 0) {
        local.abort();
        throw new Error('lease lost: the job was taken over or cancelled');
      }
    };
    const timer = setInterval(() => void heartbeat().catch(() => {}), Math.max(1000, this.leaseMs / 3));
    try {
      if (job.takenOver && job.attempts > job.maxAttempts) {
        throw new DocupodError(
          Problems.unprocessable,
          `the worker stopped ${job.attempts - 1} times while running this job without finishing (crash, out of memory or kill); giving up`,
          { retryable: false },
        );
      }
      const payload = reg.schema.parse(job.payload);
      await reg.handler(payload, { jobId: job.id, attempt: job.attempts, signal: local.signal, heartbeat });
      await this.opts.db.execute(sql`update ${jobs} set state = 'done', locked_by = null, locked_until = null, finished_at = now(), updated_at = now()
        where id = ${job.id} and locked_by = ${this.workerId}`);
      this.m.run.observe({ name, outcome: 'done' }, (performance.now() - t0) / 1000);
    } catch (err) {
      if (this.controller.signal.aborted) {
        // Shutting down: give the job back without counting the attempt, so a restart continues it.
        await this.opts.db
          .execute(sql`update ${jobs} set state = 'queued', attempts = greatest(attempts - 1, 0), locked_by = null, locked_until = null, updated_at = now()
            where id = ${job.id} and locked_by = ${this.workerId}`)
          .catch(() => {});
        return;
      }
      // Logged, stored as the job's last error and shown as the document's: never a failed query's parameters.
      const reason = errorMessage(err);
      const permanent = (err instanceof DocupodError && err.extra.retryable === false) || job.attempts >= job.maxAttempts;
      if (permanent) {
        log.warn({ reason }, 'job failed');
        await this.opts.db.execute(sql`update ${jobs} set state = 'failed', last_error = ${reason}, locked_by = null, locked_until = null,
          finished_at = now(), updated_at = now() where id = ${job.id}`);
        await reg.onFailed?.(job.payload, reason, err).catch((e: Error) => log.error({ err: e }, 'onFailed hook failed'));
        this.m.run.observe({ name, outcome: 'failed' }, (performance.now() - t0) / 1000);
      } else {
        const delay = this.backoffMs * 2 ** (job.attempts - 1);
        log.warn({ reason, retryInMs: delay }, 'job failed; will retry');
        await this.opts.db.execute(sql`update ${jobs} set state = 'queued', last_error = ${reason}, locked_by = null, locked_until = null,
          run_at = now() + ${`${delay} milliseconds`}::interval, updated_at = now() where id = ${job.id}`);
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
