import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, spawnServer } from './fixtures/child-server.js';

// These run the built program (`npm test` builds first) the way users and the Helm chart do.
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'docupod-cli-'));
  dirs.push(d);
  return d;
}

async function docupod(args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env }, cwd, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('docupod CLI', () => {
  it('stops on a bad value, naming the variable, the value and what is accepted', async () => {
    const r = await docupod(['serve'], { DOCUPOD_PORT: 'http', DOCUPOD_SIGNUP: 'sometimes' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('DOCUPOD_PORT="http": expected a port number');
    expect(r.stderr).toMatch(/DOCUPOD_SIGNUP="sometimes": .*"open".*"invite".*"closed"/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  });

  it('rejects an unknown role with the valid ones', async () => {
    const r = await docupod(['serve', '--role', 'gateway,frontend'], { DOCUPOD_DATA_DIR: tempDir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown role "frontend"; choose from: gateway, ingest, retrieval, chat, models, web, all');
  });

  it('prints the effective config with secrets redacted, reading .env', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, '.env'), 'DOCUPOD_PORT=9191\nDOCUPOD_JWT_SECRET=super-secret-value-that-is-long-enough-123\n');
    const r = await docupod(['config'], { DATABASE_URL: 'postgres://app:hunter2@db/docupod' }, dir);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown.http.port).toBe(9191);
    expect(shown.auth.jwtSecret).toBe('<redacted>');
    expect(r.stdout).not.toContain('super-secret');
    expect(r.stdout).not.toContain('hunter2');
  });

  it('migrates an embedded data directory', async () => {
    const dir = tempDir();
    const r = await docupod(['migrate'], { DOCUPOD_DATA_DIR: dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/migrations applied to pglite .* pgvector: on/);
  });

  it('lists roles and their modules', async () => {
    const r = await docupod(['list-roles']);
    expect(r.stdout).toMatch(/^retrieval\n {2}depends on: db, embedder, http/m);
  });

  it('serves, then on SIGTERM reports not ready, drains and exits 0', async () => {
    const server = await spawnServer([], { DOCUPOD_DATA_DIR: tempDir(), DOCUPOD_SHUTDOWN_DELAY: '1500ms' });
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const stopped = server.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, 400));
    const during = await fetch(`${server.url}/readyz`);
    expect(during.status).toBe(503);
    expect(((await during.json()) as { detail: string }).detail).toBe('shutting down');
    expect(await stopped).toBe(0);
    expect(server.logs.some((l) => l.msg === 'stopped')).toBe(true);
    expect(server.logs.find((l) => l.msg === 'request' && l.route === '/readyz')).toBeUndefined(); // probes stay out of the log
  }, 60_000);
});
