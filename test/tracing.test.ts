import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnServer } from './fixtures/child-server.js';

// Tracing is process-global (the OpenTelemetry SDK registers a global provider), so it is tested on the built
// program in a child process, with an in-test OTLP/HTTP receiver on loopback.
describe('OpenTelemetry tracing', () => {
  it('exports one span per request to OTEL_EXPORTER_OTLP_ENDPOINT, flushed on shutdown', async () => {
    const bodies: string[] = [];
    const receiver = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const otlp = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'docupod-otel-'));
    const server = await spawnServer(['--role', 'web'], { DOCUPOD_DATA_DIR: dir, OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_SERVICE_NAME: 'docupod-test' });
    try {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      await server.stop('SIGTERM');
      const all = bodies.join('\n');
      expect(all).toContain('GET /healthz');
      expect(all).toContain('docupod-test');
    } finally {
      await server.stop('SIGKILL');
      receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
