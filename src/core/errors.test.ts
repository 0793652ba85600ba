import { describe, expect, it } from 'vitest';
import { databaseUnavailable } from './errors.js';

describe('databaseUnavailable', () => {
  it('turns a lost or refused database connection into a 503 with Retry-After, looking through causes', () => {
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    const wrapped = new Error('Failed query: select 1', { cause: shutdown }); // how the query layer wraps driver errors
    for (const err of [shutdown, wrapped, Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), new Error('Connection terminated unexpectedly')]) {
      const e = databaseUnavailable(err);
      expect(e?.status, String(err)).toBe(503);
      expect(e?.extra.retryAfter).toBe(2);
      expect(e?.cause).toBe(err);
    }
  });

  it('leaves every other error alone (a bug stays a 500)', () => {
    expect(databaseUnavailable(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBeUndefined();
    expect(databaseUnavailable(new TypeError('x is undefined'))).toBeUndefined();
    expect(databaseUnavailable(undefined)).toBeUndefined();
  });
});
