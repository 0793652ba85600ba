import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

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
    const child = spawn(process.execPath, ['bin/docupod.js', 'serve', '--role', 'web', '--port', '0', '--host', '127.0.0.1'], {
      env: { PATH: process.env.PATH, DOCUPOD_DATA_DIR: dir, DOCUPOD_LOG_FORMAT: 'json', OTEL_EXPORTER_OTLP_ENDPOINT: otlp, OTEL_SERVICE_NAME: 'docupod-test' },
    });
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const address = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /docupod listening on (http:\/\/[^"]+)"/.exec(out);
          if (m) {
            clearInterval(t);
            resolve(m[1]!);
          }
        }, 50);
        child.once('exit', () => reject(new Error(out)));
      });
      expect((await fetch(`${address}/`)).status).toBe(200);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      const all = bodies.join('\n');
      expect(all).toContain('GET /');
      expect(all).toContain('docupod-test');
    } finally {
      child.kill('SIGKILL');
      receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
