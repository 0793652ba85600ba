import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { M } from '../src/modules/graph.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { createLogger } from '../src/observability/logger.js';
import { backends, freshDatabase, type TestDatabase } from './fixtures/database.js';
import { testConfig } from './fixtures/server.js';

// A failed query must not put what it was sent into the log. Sign-up is the sharpest case: its insert carries the
// e-mail and the password hash, and Postgres answers a violated CHECK with `detail: "Failing row contains (…)"`,
// the whole row. The users table is broken on purpose (a CHECK no row passes) on a real database, the real logger
// writes to a stream the test reads, and the one line about the failure must name the SQL error, not the data.

const EMAIL = 'leaky.signup@example.com';
const PASSWORD = 'Tr0ub4dor&3-horse-staple';
const NAME = 'Leaky Person';
/** The shape of every stored password (scrypt$N$r$p$salt$key): no hash may appear, whatever its salt. */
const PASSWORD_HASH = /scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+/;

describe.each(backends())('logs of a failed query (%s)', (backend) => {
  let db: TestDatabase | undefined;
  let runtime: Runtime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    await db?.close();
  });

  it('a sign-up whose insert fails logs the SQL error without the password, its hash or the e-mail', async () => {
    db = await freshDatabase(backend);
    await db.database.db.execute(sql.raw('ALTER TABLE users ADD CONSTRAINT users_refuse_everyone CHECK (false) NOT VALID'));
    const lines: string[] = [];
    const log = createLogger({ level: 'info', format: 'json' }, { role: 'all' }, { write: (line: string) => void lines.push(line) });
    runtime = await startRuntime(testConfig(db), log, { provided: { [M.db]: db.database } });

    const res = await runtime.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: EMAIL, password: PASSWORD, name: NAME } });
    expect(res.statusCode).toBe(500);
    expect(res.json().detail).toBe('internal error');

    const text = lines.join('');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toMatch(PASSWORD_HASH);
    expect(text).not.toContain(EMAIL);
    expect(text).not.toContain(NAME);

    // Still useful: the failure is logged at error with the SQL, the SQLSTATE, the constraint and Postgres's message.
    const failure = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'unhandled error');
    expect(failure, text).toBeDefined();
    expect(failure!.level).toBe(50);
    const err = failure!.err as { message: string; stack: string; query?: string; params?: unknown; database: Record<string, string> };
    expect(err.query).toMatch(/^insert into "users"/);
    expect(err.params).toBeUndefined();
    expect(err.message).toMatch(/^Failed query: insert into "users" .*\nparams: <redacted>: new row for relation "users" violates check constraint "users_refuse_everyone"$/s);
    expect(err.stack).toContain('params: <redacted>');
    expect(err.database).toMatchObject({ code: '23514', constraint: 'users_refuse_everyone', table: 'users' });
    expect(err.database.detail).toBeUndefined();
  });
});
