import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorMessage, redactQueryData, serializeError } from './logger.js';

// Real driver errors from a real (in-memory) Postgres: what Drizzle and PGlite actually attach to a failed query.

const SECRET = 'scrypt$32768$8$1$c2FsdHNhbHQ$a2V5a2V5a2V5';
let client: PGlite;
let failedInsert: Error;
let badUuid: Error;

beforeAll(async () => {
  client = await PGlite.create();
  const db = drizzle(client);
  await client.exec('create table accounts (id int primary key, email text, secret text check (length(secret) < 10))');
  failedInsert = await db.execute(sql`insert into accounts values (1, ${'ann@example.com'}, ${SECRET})`).then(() => new Error('no error'), (e: Error) => e);
  badUuid = await db.execute(sql`select ${SECRET}::uuid`).then(() => new Error('no error'), (e: Error) => e);
});
afterAll(async () => client?.close());

describe('serializeError', () => {
  it('keeps the data of a failed query out: message, stack, params, and the cause’s params and detail', () => {
    // Control: pino's own serializer writes the secret (in the message, the stack and `params`).
    expect(JSON.stringify(pino.stdSerializers.err(failedInsert))).toContain(SECRET);
    const out = JSON.stringify(serializeError(failedInsert));
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain('ann@example.com');
    expect(out).toContain('params: <redacted>');
  });

  it('keeps what describes the failure: type, SQL with placeholders, the SQLSTATE and constraint', () => {
    const out = serializeError(failedInsert) as Record<string, unknown>;
    expect(out.type).toBe('DrizzleQueryError');
    expect(out.query).toBe('insert into accounts values (1, $1, $2)');
    expect(out.message).toMatch(/violates check constraint "accounts_secret_check"$/);
    expect(out.database).toMatchObject({ code: '23514', constraint: 'accounts_secret_check', table: 'accounts' });
  });

  it('redacts the value a Postgres message quotes (invalid input syntax …: "value")', () => {
    expect(JSON.stringify(pino.stdSerializers.err(badUuid))).toContain(SECRET);
    const out = serializeError(badUuid) as { message: string; database: { code: string; message: string } };
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(out.database).toEqual({ code: '22P02', severity: 'ERROR', message: 'invalid input syntax for type uuid: "<redacted>"', routine: 'string_to_uuid' });
  });

  it('leaves the original error untouched and copes with a cause cycle', () => {
    const a = new Error('outer', { cause: failedInsert }) as Error & { cause: unknown };
    const b = new Error('inner', { cause: a });
    a.cause = b;
    expect(() => JSON.stringify(serializeError(a))).not.toThrow();
    expect(failedInsert.message).toContain(SECRET);
    expect(redactQueryData('not an error')).toBe('not an error');
  });
});

describe('errorMessage', () => {
  it('is the message without the parameters, for reasons that are stored and shown', () => {
    expect(errorMessage(failedInsert)).toBe('Failed query: insert into accounts values (1, $1, $2)\nparams: <redacted>');
    expect(errorMessage(new Error('plain'))).toBe('plain');
    expect(errorMessage('a string')).toBe('a string');
  });
});
