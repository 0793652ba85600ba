import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { FastifyInstance } from 'fastify';
import { DocupodError, Problems } from '../core/errors.js';
import { silentLogger } from '../observability/logger.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import { defineContract, httpClient, inProcessClient, serveContract, type ClientOf } from './contract.js';
import { mountInternalApi, surface } from './internal-api.js';
import { buildServer } from './server.js';

// One suite, two forms: whatever a caller observes in-process it must observe over HTTP.
const Counter = defineContract('counter', {
  add: { input: z.object({ a: z.number().int(), b: z.number().int() }), output: z.object({ sum: z.number().int() }) },
  find: { input: z.object({ id: z.string().min(1) }), output: z.object({ id: z.string() }) },
});

const impl: ClientOf<typeof Counter> = {
  add: async ({ a, b }) => ({ sum: a + b }),
  find: async ({ id }) => {
    if (id !== 'known') throw new DocupodError(Problems.notFound, `item ${id} not found`);
    return { id };
  },
};

let app: FastifyInstance;
let baseUrl: string;
const token = 'internal-token-for-tests-0123456789';

beforeAll(async () => {
  app = await buildServer({
    log: silentLogger(),
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    bodyLimit: 1 << 20,
    corsOrigins: [],
    trustProxy: false,
    version: 'test',
    readiness: async () => true,
  });
  await mountInternalApi(app, { token, contracts: [surface(Counter, inProcessClient(Counter, impl))] });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => app.close());

const forms: Array<[string, () => ClientOf<typeof Counter>]> = [
  ['in-process', () => inProcessClient(Counter, impl)],
  ['http', () => httpClient(Counter, baseUrl, { token })],
];

describe.each(forms)('role contract, %s form', (_name, make) => {
  it('returns the implementation result', async () => {
    expect(await make().add({ a: 2, b: 40 })).toEqual({ sum: 42 });
  });

  it('rejects invalid input with a validation problem naming the field', async () => {
    const err = await make().add({ a: 1.5, b: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).problem.type).toBe(Problems.validation.type);
    expect((err as DocupodError).message).toContain('body.a');
  });

  it('carries domain errors across unchanged', async () => {
    const err = await make().find({ id: 'nope' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocupodError);
    expect((err as DocupodError).status).toBe(404);
    expect((err as DocupodError).message).toBe('item nope not found');
  });
});

describe('role contract over HTTP', () => {
  it('refuses callers without the internal token', async () => {
    const err = await httpClient(Counter, baseUrl, { token: 'wrong-token-0123456789' }).add({ a: 1, b: 1 }).catch((e: unknown) => e);
    expect((err as DocupodError).status).toBe(401);
  });

  it('answers 401 to a wrong or missing token before reading the body, so an unauthenticated caller learns nothing', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Bearer ${token}x`, token, `bearer  ${token}`]) {
      const res = await app.inject({ method: 'POST', url: '/internal/counter/add', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, payload: '{not json' });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json().detail).toMatch(/Bearer <DOCUPOD_INTERNAL_TOKEN>/);
    }
    const ok = await app.inject({ method: 'POST', url: '/internal/counter/add', headers: { authorization: `Bearer ${token}` }, payload: { a: 1, b: 2 } });
    expect([ok.statusCode, ok.json()]).toEqual([200, { sum: 3 }]);
  });

  it('cannot serve a contract outside the guarded plugin', async () => {
    const bare = await buildServer({ log: silentLogger(), metrics: createMetricsRegistry({ defaultMetrics: false }), bodyLimit: 1 << 20, corsOrigins: [], trustProxy: false, version: 'test', readiness: async () => true });
    expect(() => serveContract(bare, Counter, inProcessClient(Counter, impl))).toThrow(/only be served inside the internal API plugin/);
    await bare.close();
  });

  it('turns an unreachable role into 503 naming it', async () => {
    const err = await httpClient(Counter, 'http://127.0.0.1:1', { token }).add({ a: 1, b: 1 }).catch((e: unknown) => e);
    expect((err as DocupodError).status).toBe(503);
    expect((err as DocupodError).message).toMatch(/the counter role at http:\/\/127\.0\.0\.1:1 did not answer/);
  });
});
