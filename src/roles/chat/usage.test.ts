import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../../test/fixtures/database.js';
import { llmUsage } from '../../storage/schema-chat.js';
import { UsageBuffer } from './usage.js';

const usage = (p: number, c: number) => ({ promptTokens: p, completionTokens: c, totalTokens: p + c });
const DAY = '2026-01-02';

describe('UsageBuffer', () => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await freshDatabase();
  });
  afterEach(async () => t?.close());
  const rows = async () => (await t.database.db.select().from(llmUsage)).map((r) => ({ ...r })).sort((a, b) => a.keyId.localeCompare(b.keyId));

  it('writes nothing per request, then one sum per (workspace, day, key) when flushed after a burst', async () => {
    const buf = new UsageBuffer(t.database.db, { flushMs: 60_000 });
    const ws = randomUUID();
    await Promise.all(Array.from({ length: 50 }, (_, i) => buf.record(ws, DAY, i % 2 ? 'k1' : 'k2', usage(10, i))));
    expect(await rows()).toEqual([]);
    expect(buf.pending(ws, DAY)).toBe(50 * 10 + (49 * 50) / 2);
    await buf.flush();
    expect(buf.pending(ws, DAY)).toBe(0);
    await buf.record(ws, DAY, 'k1', usage(1, 1)); // added to the stored row, not a second one
    await buf.flush();
    const odd = Array.from({ length: 25 }, (_, i) => 2 * i + 1).reduce((a, b) => a + b, 0);
    const even = Array.from({ length: 25 }, (_, i) => 2 * i).reduce((a, b) => a + b, 0);
    expect(await rows()).toEqual([
      { workspaceId: ws, day: DAY, keyId: 'k1', requests: 26, promptTokens: 251, completionTokens: odd + 1 },
      { workspaceId: ws, day: DAY, keyId: 'k2', requests: 25, promptTokens: 250, completionTokens: even },
    ]);
  });

  it('flushes on its own within the interval', async () => {
    const buf = new UsageBuffer(t.database.db, { flushMs: 20 });
    const ws = randomUUID();
    await buf.record(ws, DAY, '', usage(3, 4));
    for (let i = 0; i < 100 && (await rows()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await rows()).toEqual([{ workspaceId: ws, day: DAY, keyId: '', requests: 1, promptTokens: 3, completionTokens: 4 }]);
    await buf.stop();
  });

  it('loses nothing on a graceful stop: pending counts are written, later ones at once', async () => {
    const buf = new UsageBuffer(t.database.db, { flushMs: 60_000 });
    const ws = randomUUID();
    await buf.record(ws, DAY, '', usage(5, 5));
    await buf.stop();
    expect((await rows())[0]).toMatchObject({ requests: 1, promptTokens: 5, completionTokens: 5 });
    await buf.record(ws, DAY, '', usage(1, 2)); // e.g. a stream that ended during shutdown
    expect((await rows())[0]).toMatchObject({ requests: 2, promptTokens: 6, completionTokens: 7 });
  });

  it('keeps the counts of a failed flush for the next one', async () => {
    const ws = randomUUID();
    let fail = true;
    // A database handle whose first insert fails, as a dropped connection would.
    const db = new Proxy(t.database.db, {
      get(target, prop, receiver) {
        if (prop === 'insert' && fail) {
          fail = false;
          return () => ({ values: () => ({ onConflictDoUpdate: () => Promise.reject(new Error('connection lost')) }) });
        }
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const buf = new UsageBuffer(db, { flushMs: 60_000 });
    await buf.record(ws, DAY, '', usage(2, 3));
    await expect(buf.flush()).rejects.toThrow('connection lost');
    expect(buf.pending(ws, DAY)).toBe(5); // still counted for the daily budget
    await buf.stop();
    expect((await rows())[0]).toMatchObject({ requests: 1, promptTokens: 2, completionTokens: 3 });
  });
});
