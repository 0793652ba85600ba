import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { freshDatabase, type TestDatabase } from '../../test/fixtures/database.js';
import { silentLogger } from '../observability/logger.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import { rowsOf } from '../storage/database.js';
import { JobQueue, type QueueOptions } from './queue.js';

// The queue on a real (in-memory PGlite) database. A "dead process" is simulated by writing the row a crashed
// worker leaves behind: state running, a foreign locked_by and a lease far in the future.

const Payload = z.object({ n: z.number() });
let db: TestDatabase | undefined;
const queues: JobQueue[] = [];

afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.stop()));
  await db?.close();
  db = undefined;
});

function queue(opts: Partial<QueueOptions> = {}) {
  const q = new JobQueue({ db: db!.database.db, log: silentLogger(), metrics: createMetricsRegistry({ defaultMetrics: false }), pollMs: 20, backoffMs: 10, ...opts });
  queues.push(q);
  return q;
}

async function orphan(q: JobQueue, n: number, attempts = 1, maxAttempts = 5): Promise<string> {
  const id = await q.enqueue('t', { n }, { maxAttempts });
  await db!.database.db.execute(sql`update jobs set state = 'running', attempts = ${attempts}, locked_by = 'deadhost:1234:abcd',
    locked_until = now() + interval '1 hour' where id = ${id}`);
  return id;
}

const jobRow = async (id: string) =>
  rowsOf<{ state: string; attempts: number; last_error: string | null }>(await db!.database.db.execute(sql`select state, attempts, last_error from jobs where id = ${id}`))[0]!;

async function until(check: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('timed out');
}

describe('JobQueue', () => {
  it('runs a job left running by a dead process at once on an embedded database, without waiting for its lease', async () => {
    db = await freshDatabase('pglite');
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

  it('leaves jobs of a live worker in the same process alone', async () => {
    db = await freshDatabase('pglite');
    let release!: () => void;
    const a = queue();
    let started = 0;
    a.register('t', Payload, async () => {
      started++;
      await new Promise<void>((r) => (release = r));
    });
    const id = await a.enqueue('t', { n: 1 });
    a.start();
    await until(async () => (await jobRow(id)).state === 'running');
    const b = queue();
    b.register('t', Payload, async () => void started++);
    expect(await b.recoverOrphans()).toBe(0);
    expect((await jobRow(id)).state).toBe('running');
    release();
    await until(async () => (await jobRow(id)).state === 'done');
    expect(started).toBe(1);
  });

  it('fails, with a reason, a job whose worker died on every attempt', async () => {
    db = await freshDatabase('pglite');
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

  it('waits for the lease when the database may be shared (not exclusive), then takes the job over', async () => {
    db = await freshDatabase('pglite');
    const q = queue({ exclusive: false });
    const seen: number[] = [];
    q.register('t', Payload, async (p) => void seen.push(p.n));
    const id = await orphan(q, 9);
    await db.database.db.execute(sql`update jobs set locked_until = now() + interval '400 milliseconds' where id = ${id}`);
    q.start();
    await new Promise((r) => setTimeout(r, 150));
    expect((await jobRow(id)).state).toBe('running'); // another pod may still be working on it
    await until(async () => (await jobRow(id)).state === 'done');
    expect(seen).toEqual([9]);
  });

  it('retries with backoff and fails after max attempts, calling onFailed once', async () => {
    db = await freshDatabase('pglite');
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
});
