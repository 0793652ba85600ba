import { describe, expect, it } from 'vitest';
import { MicroBatcher, QueueFullError } from '../src/roles/models/batcher.js';

// The per-model scheduler on its own: batch sizes, the concurrency limit, the delay, the queue bound, draining.

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(runMs: number) {
  const batches: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const exec = async (items: number[]) => {
    batches.push(items);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await tick(runMs);
    inFlight--;
    return items.map((i) => i * 10);
  };
  return { exec, batches, maxInFlight: () => maxInFlight };
}

describe('MicroBatcher', () => {
  it('never exceeds maxBatchSize rows per run nor the concurrency limit, and answers each item', async () => {
    const r = recorder(5);
    const b = new MicroBatcher(r.exec, { maxBatchSize: 4, maxDelayMs: 0, concurrency: 2, maxQueueRows: 1000 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => b.submit(i, 1, '')));
    expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    expect(r.batches.every((x) => x.length <= 4)).toBe(true);
    expect(r.batches.flat().sort((a, c) => a - c)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(r.batches.length).toBeLessThan(20);
    expect(r.maxInFlight()).toBeLessThanOrEqual(2);
  });

  it('waits up to maxDelayMs for more requests when idle', async () => {
    const r = recorder(0);
    const b = new MicroBatcher(r.exec, { maxBatchSize: 8, maxDelayMs: 40, concurrency: 1, maxQueueRows: 1000 });
    const first = b.submit(1, 1, '');
    await tick(10);
    const second = b.submit(2, 1, '');
    await Promise.all([first, second]);
    expect(r.batches).toEqual([[1, 2]]);
  });

  it('combines only items with the same key', async () => {
    const r = recorder(0);
    const b = new MicroBatcher(r.exec, { maxBatchSize: 8, maxDelayMs: 20, concurrency: 1, maxQueueRows: 1000 });
    await Promise.all([b.submit(1, 1, 'a'), b.submit(2, 1, 'b'), b.submit(3, 1, 'a')]);
    expect(r.batches).toEqual([[1, 3], [2]]);
  });

  it('fails fast when the queue is full, and drains before release', async () => {
    const r = recorder(20);
    const b = new MicroBatcher(r.exec, { maxBatchSize: 1, maxDelayMs: 0, concurrency: 1, maxQueueRows: 2 });
    // The first runs at once; the next two wait (the limit counts waiting rows); the fourth is turned away.
    const accepted = [b.submit(1, 1, ''), b.submit(2, 1, ''), b.submit(3, 1, '')];
    await expect(b.submit(4, 1, '')).rejects.toBeInstanceOf(QueueFullError);
    await b.drain();
    expect(r.batches.flat()).toEqual([1, 2, 3]);
    await expect(Promise.all(accepted)).resolves.toEqual([10, 20, 30]);
  });

  it('rejects every item of a failed run', async () => {
    const b = new MicroBatcher<number, number>(async () => Promise.reject(new Error('boom')), { maxBatchSize: 4, maxDelayMs: 0, concurrency: 1, maxQueueRows: 10 });
    const results = await Promise.allSettled([b.submit(1, 1, ''), b.submit(2, 1, '')]);
    expect(results.map((x) => x.status)).toEqual(['rejected', 'rejected']);
  });
});
