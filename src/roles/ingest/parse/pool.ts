// A small worker_threads pool for parsing untrusted files off the event loop. Written here rather than taken from a
// library because the one feature that matters most — killing a worker that overruns its wall time and carrying on —
// is a few lines with Worker.terminate(), and the pool must also rebuild DocupodErrors from worker messages.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { DocupodError, Problems, type ProblemType } from '../../../core/errors.js';
import { LimitEnv, checkFileSize, parseError, type ParseLimits } from './limits.js';
import type { ChunkOptions } from '../../../core/chunking.js';
import type { ChunkedDocument, ParseRequest, WorkerMessage } from './worker.js';
import { workerExecArgv } from './worker-exec-argv.js';

export interface ParserPoolOptions {
  /** Number of worker threads (parses that can run at once). */
  size: number;
  limits: ParseLimits;
  /**
   * V8 heap limits per worker. A file that makes a parser allocate past them kills only that worker (reported as
   * 422) instead of the whole process. Default: 1 GiB old generation.
   */
  resourceLimits?: ResourceLimits;
  /**
   * Chunk in the worker as well, with these options: parse() then answers with `chunks` (and no sections). Chunking
   * and identifier extraction are CPU work that would otherwise run on the main thread, which in embedded mode also
   * runs the database (PGlite).
   */
  chunk?: ChunkOptions;
  /** Node options for the workers; default: the ones of this process a worker accepts (worker-exec-argv.ts). */
  execArgv?: string[];
}

export interface ParserPoolStats {
  workers: number;
  busy: number;
  queued: number;
  /** Workers started since the pool was created (a timeout or crash replaces one). */
  started: number;
  timeouts: number;
}

interface Task {
  bytes: Uint8Array;
  filename: string;
  resolve: (doc: ChunkedDocument) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task: (Task & { id: number; timer: NodeJS.Timeout }) | null;
}

const byType = new Map<string, ProblemType>(Object.values(Problems).map((p) => [p.type, p]));

/**
 * Where the worker script is. From dist/ (tsc output) it is the compiled worker.js beside this file. From the .ts
 * sources (vitest) a worker thread cannot load TypeScript by itself, so it starts through a tiny .mjs entry that
 * registers a transpiling module hook (dev/ts-hooks.mjs explains why this beats testing against a stale dist/).
 */
function workerScript(): { url: URL; workerData?: { entry: string } } {
  const compiled = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return { url: compiled };
  const source = new URL('./worker.ts', import.meta.url);
  if (import.meta.url.endsWith('.ts') && existsSync(fileURLToPath(source))) {
    return { url: new URL('./dev/ts-worker-entry.mjs', import.meta.url), workerData: { entry: source.href } };
  }
  throw new Error(`parser worker script not found next to ${import.meta.url} (was the build run?)`);
}

export class ParserPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly script = workerScript();
  private nextId = 1;
  private closed = false;
  private started = 0;
  private timeouts = 0;

  constructor(private readonly opts: ParserPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`ParserPool size must be ≥ 1, got ${opts.size}`);
  }

  get stats(): ParserPoolStats {
    return {
      workers: this.slots.length,
      busy: this.slots.filter((s) => s.task).length,
      queued: this.queue.length,
      started: this.started,
      timeouts: this.timeouts,
    };
  }

  parse(bytes: Uint8Array, filename: string): Promise<ChunkedDocument> {
    if (this.closed) return Promise.reject(new DocupodError(Problems.unavailable, 'the parser pool is closed'));
    // Refuse oversize files here, before copying them into a worker.
    try {
      checkFileSize(bytes.byteLength, filename, this.opts.limits);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<ChunkedDocument>((resolve, reject) => {
      this.queue.push({ bytes, filename, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new DocupodError(Problems.unavailable, 'the parser pool was closed'));
    const slots = this.slots.splice(0);
    for (const s of slots) {
      if (s.task) {
        clearTimeout(s.task.timer);
        s.task.reject(new DocupodError(Problems.unavailable, 'the parser pool was closed while parsing'));
        s.task = null;
      }
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Hands queued tasks to idle ready workers, starting workers up to `size`. */
  private pump(): void {
    if (this.closed) return;
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.ready && !slot.task) this.dispatch(slot, this.queue.shift()!);
    }
    // Start as many workers as there are queued tasks not covered by workers still starting up.
    const starting = this.slots.filter((s) => !s.ready).length;
    let wanted = Math.min(this.queue.length - starting, this.opts.size - this.slots.length);
    while (wanted-- > 0 && this.queue.length > 0) this.spawn();
  }

  private dispatch(slot: Slot, task: Task): void {
    const id = this.nextId++;
    const { timeoutMs } = this.opts.limits;
    const timer = setTimeout(() => {
      if (slot.task?.id !== id) return;
      this.timeouts++;
      const t = slot.task;
      slot.task = null;
      this.remove(slot);
      // terminate() stops even a synchronous infinite loop in the worker; the pool goes on with a fresh worker.
      void slot.worker.terminate();
      t.reject(
        parseError(
          Problems.unprocessable,
          `Parsing "${t.filename}" took longer than ${formatMs(timeoutMs)}; the limit is ${formatMs(timeoutMs)} ` +
            `(${LimitEnv.timeoutMs}). The file may be unusually complex: simplify or split it, or raise the limit.`,
        ),
      );
      this.pump();
    }, timeoutMs);
    slot.task = { ...task, id, timer };
    // Copy, not transfer: the caller keeps its buffer (it may still need to store or hash it).
    slot.worker.postMessage({ id, bytes: task.bytes, filename: task.filename, limits: this.opts.limits, chunk: this.opts.chunk } satisfies ParseRequest);
  }

  private spawn(): void {
    let worker: Worker;
    try {
      worker = new Worker(this.script.url, {
        workerData: this.script.workerData,
        resourceLimits: this.opts.resourceLimits ?? { maxOldGenerationSizeMb: 1024 },
        execArgv: this.opts.execArgv ?? workerExecArgv(),
        // Parser libraries sometimes log warnings; they belong to the worker, not the service's structured log.
        stdout: true,
        stderr: true,
      });
    } catch (err) {
      // Node refuses the worker before it exists (bad options, no threads left): nothing can parse until the
      // process changes, so every waiting file fails now instead of being retried into the same refusal.
      this.failQueued(err as Error);
      return;
    }
    worker.stdout.resume();
    worker.stderr.resume();
    const slot: Slot = { worker, ready: false, task: null };
    this.slots.push(slot);
    this.started++;

    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'ready') {
        slot.ready = true;
        this.pump();
        return;
      }
      const task = slot.task;
      if (!task || task.id !== msg.id) return; // a late answer for a task that already timed out
      clearTimeout(task.timer);
      slot.task = null;
      if (msg.type === 'result') task.resolve(msg.doc);
      else task.reject(rebuildError(msg));
      this.pump();
    });
    // 'error' (uncaught exception, out of memory) is always followed by 'exit'; handle both in one place.
    let failure: Error | undefined;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', () => {
      if (!this.slots.includes(slot)) return; // removed on purpose (timeout, close)
      this.remove(slot);
      const task = slot.task;
      slot.task = null;
      if (task) {
        clearTimeout(task.timer);
        const oom = (failure as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
        task.reject(
          oom
            ? parseError(Problems.unprocessable, `Parsing "${task.filename}" ran out of memory; the file may be malformed or too complex`)
            : new DocupodError(Problems.internal, `the parser worker died while parsing "${task.filename}"`, {}, { cause: failure }),
        );
      } else if (!slot.ready) {
        // The worker could not even start: a broken install, not a bad file. Fail what is waiting instead of
        // respawning in a loop.
        this.failQueued(failure);
        return;
      }
      this.pump();
    });
  }

  /** A worker could not start: every queued file fails at once, not retryable, and none of their bytes stay held. */
  private failQueued(cause: Error | undefined): void {
    const err = new DocupodError(
      Problems.internal,
      `the parser worker could not start${cause ? `: ${cause.message}` : ''}. This is a problem with how docupod was started or installed, not with the file; ` +
        'fix it and re-index the document',
      { retryable: false },
      { cause },
    );
    for (const t of this.queue.splice(0)) t.reject(err);
  }

  private remove(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }
}

function rebuildError(msg: Extract<WorkerMessage, { type: 'error' }>): Error {
  const problem = msg.problem ? byType.get(msg.problem) : undefined;
  if (problem) return new DocupodError(problem, msg.message, msg.extra ?? {});
  return new DocupodError(Problems.internal, `parser failed: ${msg.message}`);
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}
