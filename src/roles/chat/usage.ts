import { sql } from 'drizzle-orm';
import type { Db } from '../../storage/database.js';
import { llmUsage } from '../../storage/schema-chat.js';
import type { Usage } from './contract.js';

// Token usage is counted per (workspace, UTC day, API key). Writing one upsert per answer put a database round trip
// (and, with embedded PGlite, a turn of its single backend) on every request; instead answers add to counters in
// memory and one flush a second writes the sums, one upsert per key touched. Counts are not lost on a graceful stop:
// stop() flushes, and anything recorded after it is written at once. A crash loses at most the last interval.
//
// Quotas stay exact on this pod: `pending(workspaceId)` reports what is counted but not yet written, and the daily
// budget check adds it to the database total. Other replicas see this pod's usage up to one interval late, so with
// several chat pods a workspace can overshoot its daily budget by what they answer in that second.

interface Row {
  workspaceId: string;
  day: string;
  keyId: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
}

export interface UsageBufferOptions {
  /** How often pending counts are written (default 1000 ms). */
  flushMs?: number;
  onError?: (err: unknown) => void;
}

export class UsageBuffer {
  private pendingRows = new Map<string, Row>();
  /** Taken out of `pendingRows` by a flush that has not committed yet: still counted by pending(). */
  private flushingRows = new Map<string, Row>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly opts: UsageBufferOptions = {},
  ) {}

  /** Adds one request's usage. Buffered until the next flush; written at once after stop(). */
  async record(workspaceId: string, day: string, keyId: string, usage: Usage): Promise<void> {
    if (this.stopped) return this.write([{ workspaceId, day, keyId, requests: 1, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens }]);
    const k = `${workspaceId}|${day}|${keyId}`;
    const row = this.pendingRows.get(k);
    if (row) {
      row.requests += 1;
      row.promptTokens += usage.promptTokens;
      row.completionTokens += usage.completionTokens;
    } else this.pendingRows.set(k, { workspaceId, day, keyId, requests: 1, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch((err: unknown) => this.opts.onError?.(err));
    }, this.opts.flushMs ?? 1000).unref();
  }

  /** Tokens (prompt + completion) of a workspace on a day that are counted here but not yet in the database. */
  pending(workspaceId: string, day: string): number {
    let n = 0;
    for (const rows of [this.pendingRows, this.flushingRows])
      for (const r of rows.values()) if (r.workspaceId === workspaceId && r.day === day) n += r.promptTokens + r.completionTokens;
    return n;
  }

  /** Writes everything pending now; concurrent calls share one flush after the running one. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pendingRows.size === 0) return;
    this.flushingRows = this.pendingRows;
    this.pendingRows = new Map();
    const rows = [...this.flushingRows.values()];
    this.flushing = this.write(rows)
      .catch((err: unknown) => {
        // Put the counts back so the next flush retries them rather than losing them.
        for (const r of rows) {
          const k = `${r.workspaceId}|${r.day}|${r.keyId}`;
          const cur = this.pendingRows.get(k);
          if (cur) {
            cur.requests += r.requests;
            cur.promptTokens += r.promptTokens;
            cur.completionTokens += r.completionTokens;
          } else this.pendingRows.set(k, r);
        }
        if (!this.stopped) this.timer ??= setTimeout(() => {
          this.timer = undefined;
          void this.flush().catch((e: unknown) => this.opts.onError?.(e));
        }, this.opts.flushMs ?? 1000).unref();
        throw err;
      })
      .finally(() => {
        this.flushingRows = new Map();
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** Flushes what is pending; later records are written one by one, so nothing is left in memory at exit. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async write(rows: Row[]): Promise<void> {
    // One statement for all rows; each (workspace, day, key) appears once in `rows`, as ON CONFLICT requires.
    await this.db
      .insert(llmUsage)
      .values(rows)
      .onConflictDoUpdate({
        target: [llmUsage.workspaceId, llmUsage.day, llmUsage.keyId],
        set: {
          requests: sql`${llmUsage.requests} + excluded.requests`,
          promptTokens: sql`${llmUsage.promptTokens} + excluded.prompt_tokens`,
          completionTokens: sql`${llmUsage.completionTokens} + excluded.completion_tokens`,
        },
      });
  }
}
