import { describe, expect, it } from 'vitest';
import { DocupodError } from '../../core/errors.js';
import { StreamAdmission } from './admission.js';

describe('StreamAdmission', () => {
  it('admits up to its limit, then refuses with 503 and Retry-After until a slot is released', () => {
    const a = new StreamAdmission(2);
    const first = a.enter();
    a.enter();
    expect(a.inFlight).toBe(2);
    let refused: unknown;
    try {
      a.enter();
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(DocupodError);
    expect((refused as DocupodError).status).toBe(503);
    expect((refused as DocupodError).extra.retryAfter).toBe(1);
    first();
    first(); // a second release of the same slot frees nothing more
    expect(a.inFlight).toBe(1);
    expect(() => a.enter()).not.toThrow();
    expect(() => a.enter()).toThrow(/already answering 2 questions at once/);
  });

  it('rejects a limit below one', () => {
    expect(() => new StreamAdmission(0)).toThrow(/≥ 1/);
  });
});
