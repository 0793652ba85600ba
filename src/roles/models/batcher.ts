// Dynamic micro-batching with a concurrency limit, per model (Triton's dynamic batcher, simplified).
//
// Requests wait in a queue. A batch starts when a run slot is free (at most `concurrency` runs in flight) and either
// `maxBatchSize` rows are waiting or the oldest request has waited `maxDelayMs`. With maxDelayMs = 0 an idle model
// runs at once with whatever arrived in the same event-loop turn; under load, batches form on their own from the
// requests that queue while the previous run is busy, so batching costs no latency when the model is idle.
// Only requests with the same key (the non-batch dimensions of their inputs) are combined.

export interface BatchOptions {
  maxBatchSize: number;
  maxDelayMs: number;
  concurrency: number;
  /** Rows allowed to wait; beyond it submit() fails fast (the caller answers 503). */
  maxQueueRows: number;
}

interface Pending<I, O> {
  item: I;
  rows: number;
  key: string;
  at: number;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class MicroBatcher<I, O> {
  private queue: Array<Pending<I, O>> = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    /** Runs one batch; returns one result per item, in order. */
    private readonly exec: (items: I[]) => Promise<O[]>,
    private readonly opts: BatchOptions,
    private readonly onBatch?: (rows: number, requests: number) => void,
  ) {}

  get pendingRows(): number {
    return this.queuedRows;
  }

  submit(item: I, rows: number, key: string): Promise<O> {
    if (this.queuedRows + rows > this.opts.maxQueueRows && this.queue.length > 0)
      return Promise.reject(new QueueFullError(`${this.queuedRows} rows already waiting (limit ${this.opts.maxQueueRows})`));
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, rows, key, at: performance.now(), resolve, reject });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Resolves when nothing is queued or running (used before a model version is released). */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(flush = false): void {
    while (this.inFlight < this.opts.concurrency && this.queue.length > 0) {
      if (this.queuedRows < this.opts.maxBatchSize && !flush) {
        if (this.opts.maxDelayMs > 0) {
          const remaining = this.opts.maxDelayMs - (performance.now() - this.queue[0]!.at);
          if (remaining > 0) {
            this.timer ??= setTimeout(() => {
              this.timer = undefined;
              this.schedule(true);
            }, remaining);
            return;
          }
        } else if (this.inFlight === 0) {
          // Idle model, no delay configured: let the requests that arrive in this event-loop turn join the batch.
          this.immediate ??= setImmediate(() => {
            this.immediate = undefined;
            this.schedule(true);
          });
          return;
        }
      }
      this.startBatch();
    }
  }

  private startBatch(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const key = this.queue[0]!.key;
    const batch: Array<Pending<I, O>> = [];
    let rows = 0;
    const rest: Array<Pending<I, O>> = [];
    for (const p of this.queue) {
      // The first request always goes, even when it alone exceeds maxBatchSize.
      if (p.key === key && (batch.length === 0 || rows + p.rows <= this.opts.maxBatchSize)) {
        batch.push(p);
        rows += p.rows;
      } else rest.push(p);
    }
    this.queue = rest;
    this.queuedRows -= rows;
    this.inFlight++;
    this.onBatch?.(rows, batch.length);
    const settle = () => {
      this.inFlight--;
      if (this.queue.length > 0) this.schedule();
      else if (this.inFlight === 0) this.idleWaiters.splice(0).forEach((w) => w());
    };
    this.exec(batch.map((p) => p.item)).then(
      (results) => {
        batch.forEach((p, i) => p.resolve(results[i]!));
        settle();
      },
      (err: unknown) => {
        batch.forEach((p) => p.reject(err));
        settle();
      },
    );
  }
}
