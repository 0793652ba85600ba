import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../observability/metrics.js';
import { buildServer, hijackHeaders } from './server.js';

// The per-request hooks of the shared HTTP layer: security headers (computed once from helmet), the access log
// (written without the redaction pass) and the headers a hijacked (SSE) reply must still carry.

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    cb();
  },
});
let app: FastifyInstance;

beforeAll(async () => {
  // Redaction configured as in production, so the test shows which lines it still covers.
  const log = pino({ level: 'info', redact: { paths: ['token', '*.token', 'headers.authorization'], censor: '<redacted>' } }, sink);
  app = await buildServer({
    log,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    bodyLimit: 1 << 20,
    corsOrigins: ['https://ui.example'],
    trustProxy: false,
    version: 'test',
    readiness: async () => true,
  });
  app.get('/echo', async (request) => {
    request.log.info({ token: 'secret-token', headers: { authorization: 'Bearer secret' } }, 'handler line');
    return { ok: true };
  });
  app.get('/stream', async (request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { ...hijackHeaders(reply), 'content-type': 'text/event-stream' });
    reply.raw.end('data: 1\n\n');
  });
  await app.ready();
});
afterAll(async () => app.close());

describe('per-request hooks', () => {
  it('sets helmet’s security headers and the request id on answers, errors and 404s alike', async () => {
    for (const url of ['/echo', '/readyz', '/no-such-route']) {
      const res = await app.inject({ url });
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['cross-origin-resource-policy']).toBe('same-site');
      expect(res.headers['content-security-policy']).toBeUndefined(); // off: the docs UI needs its inline assets
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('gives a hijacked (SSE) reply the same headers, CORS included', async () => {
    const res = await app.inject({ url: '/stream', headers: { origin: 'https://ui.example', 'x-request-id': 'sse-1' } });
    expect(res.body).toBe('data: 1\n\n');
    expect(res.headers['content-type']).toBe('text/event-stream');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-request-id']).toBe('sse-1');
    expect(res.headers['access-control-allow-origin']).toBe('https://ui.example');
  });

  it('writes one access line per request with its id, route template and status, and still redacts other lines', async () => {
    lines.length = 0;
    const res = await app.inject({ url: '/echo?x=1', headers: { authorization: 'Bearer secret', 'x-request-id': 'req-42' } });
    expect(res.statusCode).toBe(200);
    const access = lines.filter((l) => l.msg === 'request');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ level: 30, reqId: 'req-42', method: 'GET', route: '/echo', status: 200 });
    expect(typeof access[0]!.durationMs).toBe('number');
    const handler = lines.find((l) => l.msg === 'handler line');
    expect(handler).toMatchObject({ reqId: 'req-42', token: '<redacted>', headers: { authorization: '<redacted>' } });
    expect(JSON.stringify(lines)).not.toContain('secret');
  });

  it('keeps probes out of the access log', async () => {
    lines.length = 0;
    await app.inject({ url: '/healthz' });
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(0);
  });
});

describe('/readyz', () => {
  const serve = (readiness: () => Promise<true | string>, degraded: () => Promise<Record<string, string>>) =>
    buildServer({ log: pino({ level: 'silent' }), metrics: createMetricsRegistry({ defaultMetrics: false }), bodyLimit: 1 << 20, corsOrigins: [], trustProxy: false, version: 'test', readiness, degraded });

  it('stays 200 when only a remote role is down, naming it (degraded)', async () => {
    const a = await serve(async () => true, async () => ({ retrieval: 'the retrieval role at http://r did not answer: fetch failed' }));
    const res = await a.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'degraded', checks: { retrieval: 'the retrieval role at http://r did not answer: fetch failed' } });
    await a.close();
  });

  it('answers 503 problem+json when its own database is down, with the remote checks too', async () => {
    const a = await serve(async () => 'database: connection refused', async () => ({ chat: 'down' }));
    const res = await a.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 503, detail: 'database: connection refused', checks: { chat: 'down' } });
    await a.close();
  });

  it('says ready when nothing fails', async () => {
    const a = await serve(async () => true, async () => ({}));
    expect((await a.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    await a.close();
  });
});
