import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '../observability/logger.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import { fastResponse } from './serializer.js';
import { buildServer } from './server.js';

const Shape = z.object({
  id: z.uuid(),
  role: z.enum(['owner', 'viewer']),
  note: z.string().optional(),
  ids: z.array(z.string()).nullable(),
  nested: z.array(z.object({ name: z.string() })),
});
const Fast = fastResponse(Shape.extend({}));

let app: FastifyInstance;
const row = { id: '0b7c1f4e-7d2a-4b8e-9c3d-1a2b3c4d5e6f', role: 'owner', ids: null, nested: [{ name: 'a', secret: 'x' }], passwordHash: 'scrypt$…' };

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
  const typed = app.withTypeProvider<ZodTypeProvider>();
  // The handlers return more than the schema declares, as a database row would.
  typed.get('/zod', { schema: { response: { 200: Shape } } }, async () => row as never);
  typed.get('/fast', { schema: { response: { 200: Fast } } }, async () => row as never);
  typed.get('/fast-with-ids', { schema: { response: { 200: Fast } } }, async () => ({ ...row, ids: ['a', 'b'], note: 'n' }) as never);
  typed.get('/zod-bad', { schema: { response: { 200: Shape } } }, async () => ({ ...row, role: 'nobody' }) as never);
  await app.ready();
});
afterAll(async () => app.close());

describe('response serialisation', () => {
  it('writes the same JSON for a fastResponse() schema as zod does, without undeclared properties', async () => {
    const viaZod = await app.inject({ url: '/zod' });
    const viaFast = await app.inject({ url: '/fast' });
    expect(viaFast.statusCode).toBe(200);
    expect(viaFast.body).toBe(viaZod.body);
    expect(viaFast.json()).toEqual({ id: row.id, role: 'owner', ids: null, nested: [{ name: 'a' }] });
    expect(viaFast.body).not.toContain('passwordHash');
    expect(viaFast.body).not.toContain('secret');
    expect((await app.inject({ url: '/fast-with-ids' })).json()).toMatchObject({ ids: ['a', 'b'], note: 'n' });
  });

  it('still validates answers of unmarked schemas (a mismatch is a 500 problem)', async () => {
    const res = await app.inject({ url: '/zod-bad' });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('refuses to mark a schema JSON Schema cannot express, when the route is built', async () => {
    const other = await buildServer({
      log: silentLogger(),
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      bodyLimit: 1 << 20,
      corsOrigins: [],
      trustProxy: false,
      version: 'test',
      readiness: async () => true,
    });
    const withTransform = fastResponse(z.object({ n: z.string().transform((s) => s.length) }));
    other.withTypeProvider<ZodTypeProvider>().get('/t', { schema: { response: { 200: withTransform } } }, async () => ({ n: 'abc' }) as never);
    await expect(other.ready()).rejects.toThrow(/transform/i);
    await other.close().catch(() => {});
  });
});
