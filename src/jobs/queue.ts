import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { z } from 'zod';
import { DocupodError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import { Gauge, Histogram, metric, type Registry } from '../observability/metrics.js';
import { rowsOf, type Db } from '../storage/database.js';
import { jobs } from '../storage/schema-documents.js';

// A durable job queue in Postgres (no extra service): a job is claimed with FOR UPDATE SKIP LOCKED and a lease;
// the worker heartbeats while it runs; a worker that dies simply lets its lease expire and another (or the same,
// after a restart) picks the job up again. Handlers must therefore be idempotent. Retries back off exponentially
// up to max_attempts; an error marked `retryable: false` fails at once.

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
  private wake: (() => void) | undefined;
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
    this.wake?.();
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
    for (const [name, reg] of this.registrations) for (let i = 0; i < reg.concurrency; i++) this.loops.push(this.loop(name, reg));
  }

  async stop(): Promise<void> {
    this.controller.abort();
    this.wake?.();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.running]);
    this.loops = [];
  }

  private async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
      this.controller.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
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
    const rows = rowsOf<ClaimedJob>(
      await this.opts.db.execute(sql`
        update ${jobs} set state = 'running', attempts = attempts + 1, locked_by = ${this.workerId},
          locked_until = now() + ${lease}::interval, updated_at = now()
        where id = (
          select id from ${jobs}
          where name = ${name} and ((state = 'queued' and run_at <= now()) or (state = 'running' and locked_until < now()))
          order by run_at limit 1 for update skip locked)
        returning id, payload, attempts, max_attempts as "maxAttempts",
          extract(epoch from (now() - run_at))::float8 as "waitSeconds"`),
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
      const reason = err instanceof Error ? err.message : String(err);
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
  waitSeconds: number;
}
