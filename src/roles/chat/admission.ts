import { DocupodError, Problems } from '../../core/errors.js';

/**
 * Admission control for answers in one chat process. Each admitted answer costs event-loop time for every relayed
 * token; past a point, more streams make every stream slower and new ones wait seconds for a first token. Refusing at
 * once (503 with Retry-After) lets a client or load balancer go elsewhere while admitted streams keep their pace.
 * A plain counter: the process is single-threaded, and a slot is held from admission to the stream's end.
 */
export class StreamAdmission {
  private active = 0;

  constructor(
    readonly max: number,
    /** Seconds a refused client is told to wait (answers last seconds, so a slot frees up soon). */
    private readonly retryAfterSeconds = 1,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`the stream limit must be a whole number ≥ 1, got ${max}`);
  }

  get inFlight(): number {
    return this.active;
  }

  /** Takes a slot and returns its release (safe to call twice), or throws the 503 to answer. */
  enter(): () => void {
    if (this.active >= this.max)
      throw new DocupodError(Problems.unavailable, `this chat process is already answering ${this.max} questions at once; try again in ${this.retryAfterSeconds} s`, {
        retryAfter: this.retryAfterSeconds,
      });
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
    };
  }
}
