import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/schema.js';
import { silentLogger } from '../src/observability/logger.js';
import { M, RoleError } from '../src/modules/graph.js';
import { startRuntime, type Runtime } from '../src/modules/runtime.js';
import { freshDatabase, type TestDatabase } from './fixtures/database.js';

const token = 'internal-token-for-tests-0123456789';
const base = { DOCUPOD_DATA_DIR: 'memory://', DOCUPOD_LOG_LEVEL: 'silent', DOCUPOD_METRICS_ENABLED: 'false', DOCUPOD_JWT_SECRET: 'x'.repeat(40), DOCUPOD_INTERNAL_TOKEN: token };

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A runtime as `docupod serve` starts it (listening for other processes), or as a CLI command's (listens: false). */
async function start(env: Record<string, string>, withDb = true, listens = true): Promise<Runtime> {
  let db: TestDatabase | undefined;
  if (withDb) {
    db = await freshDatabase('pglite');
    cleanups.push(() => db!.close());
  }
  const rt = await startRuntime(loadConfig({ ...base, ...env }), silentLogger(), { provided: db ? { [M.db]: db.database } : {}, listens });
  cleanups.push(() => rt.stop());
  return rt;
}

describe('roles', () => {
  it('refuses to start chat without a retrieval role, naming the variable to set', async () => {
    await expect(start({ DOCUPOD_ROLE: 'chat' })).rejects.toThrow(RoleError);
    await expect(start({ DOCUPOD_ROLE: 'chat' })).rejects.toThrow(/needs the retrieval role: run it in this process \(--role chat,retrieval\) or set DOCUPOD_RETRIEVAL_URL/);
  });

  it('refuses to start a split layout without the internal token, naming the variable', async () => {
    const { DOCUPOD_INTERNAL_TOKEN: _, ...noToken } = base;
    for (const [roles, why] of [
      ['retrieval', /serves the internal API of retrieval to gateway, chat in other processes/],
      ['gateway', /calls ingest, retrieval, chat, models in other processes/],
      ['models', /serves the internal API of models/],
    ] as const) {
      const config = loadConfig({ ...noToken, DOCUPOD_ROLE: roles, DOCUPOD_INGEST_URL: 'http://127.0.0.1:1', DOCUPOD_RETRIEVAL_URL: 'http://127.0.0.1:1', DOCUPOD_CHAT_URL: 'http://127.0.0.1:1', DOCUPOD_MODELS_URL: 'http://127.0.0.1:1' });
      const err = await startRuntime(config, silentLogger(), { listens: true }).catch((e: unknown) => e);
      expect(err, roles).toBeInstanceOf(RoleError);
      expect((err as Error).message).toMatch(/^DOCUPOD_INTERNAL_TOKEN is not set/);
      expect((err as Error).message).toMatch(why);
    }
  });

  it('starts only what a role needs: web has no database', async () => {
    const rt = await start({ DOCUPOD_ROLE: 'web' }, false);
    expect(rt.order).toEqual([M.http, M.web]);
    expect((await rt.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await rt.app.inject({ url: '/api/status' })).statusCode).toBe(404);
  });

  it('lets a gateway reach roles in another process over HTTP, as in-process', async () => {
    const backend = await start({ DOCUPOD_ROLE: 'ingest,retrieval,chat,models' });
    const url = await backend.app.listen({ host: '127.0.0.1', port: 0 });
    const gateway = await start({
      DOCUPOD_ROLE: 'gateway',
      DOCUPOD_INGEST_URL: url,
      DOCUPOD_RETRIEVAL_URL: url,
      DOCUPOD_CHAT_URL: url,
      DOCUPOD_MODELS_URL: url,
    });
    const all = await start({ DOCUPOD_ROLE: 'all' });

    const split = (await gateway.app.inject({ url: '/api/status' })).json();
    const together = (await all.app.inject({ url: '/api/status' })).json();
    expect(split.roles.map((r: { role: string }) => r.role).sort()).toEqual(['chat', 'ingest', 'models', 'retrieval']);
    expect(split).toEqual(together);
    expect(split.roles.every((r: { ready: boolean }) => r.ready)).toBe(true);

    // The internal routes refuse callers without the shared token.
    const res = await backend.app.inject({ method: 'POST', url: '/internal/retrieval/status', payload: {} });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toContain('application/problem+json');

    // The chat role's NDJSON stream writes its own head (a hijacked reply) and still carries the security headers.
    const stream = await backend.app.inject({ method: 'POST', url: '/internal/chat/stream/generate', headers: { authorization: `Bearer ${token}` }, payload: {} });
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toBe('application/x-ndjson');
    expect(stream.headers['x-content-type-options']).toBe('nosniff');
    expect(stream.headers['x-request-id']).toBeTruthy();
  });

  it('reports a role that stopped answering as not ready in the gateway status', async () => {
    const gateway = await start({
      DOCUPOD_ROLE: 'gateway',
      DOCUPOD_INGEST_URL: 'http://127.0.0.1:1',
      DOCUPOD_RETRIEVAL_URL: 'http://127.0.0.1:1',
      DOCUPOD_CHAT_URL: 'http://127.0.0.1:1',
      DOCUPOD_MODELS_URL: 'http://127.0.0.1:1',
    });
    const body = (await gateway.app.inject({ url: '/api/status' })).json();
    expect(body.roles.every((r: { ready: boolean }) => !r.ready)).toBe(true);
    expect(body.roles[0].detail).toMatch(/did not answer/);
  });
});
