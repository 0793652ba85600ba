import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, spawnServer, type ChildServer } from './fixtures/child-server.js';
import { freshDatabase, testDatabaseUrl } from './fixtures/database.js';

// One owner per embedded data directory (issue 15): `docupod serve` and the CLI on the same data directory, as real
// processes of the built program (`npm test` builds first). The CLI finds the running server from the directory and
// goes through its API; a second server refuses; a SIGKILLed server's lock is taken over; an owner the CLI cannot
// reach is named with --url.

const run = promisify(execFile);
const root = mkdtempSync(path.join(tmpdir(), 'docupod-cli-server-'));
const dataDir = path.join(root, 'data');
const PASSWORD = 'correct horse battery';
const serverEnv = { DOCUPOD_DATA_DIR: dataDir, DOCUPOD_SHUTDOWN_DELAY: '0s' };
let server: ChildServer | undefined;

async function docupod(args: string[], env: Record<string, string> = {}, stdin?: string) {
  const child = run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, DOCUPOD_DATA_DIR: dataDir, ...env }, timeout: 90_000 });
  if (stdin !== undefined) child.child.stdin!.end(stdin);
  try {
    const r = await child;
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of several shapes, checked by the assertions
async function api<T = any>(url: string, token: string | undefined, method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url + route, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const login = async (url: string, email: string) => (await api(url, undefined, 'POST', '/api/auth/login', { email, password: PASSWORD })).body.accessToken as string;

/** Searches until the document is found (the server indexes in the background), or gives up after 30 s. */
async function searchUntilFound(url: string, token: string, ws: string, query: string, source: string) {
  let last: unknown;
  for (let i = 0; i < 120; i++) {
    const r = await api(url, token, 'POST', `/api/workspaces/${ws}/search`, { query, k: 5 });
    last = r;
    if (r.status === 200 && r.body.results.some((x: { source: string }) => x.source === source)) return r.body.results;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`the server never found ${source} in ${ws}: last answer ${JSON.stringify(last)}`);
}

beforeAll(() => {
  writeFileSync(path.join(root, 'runbook.md'), '# Runbook\n\n## Backups\n\nThe nightly backup of the ledger database is kept for ninety-one days on the vault host.\n');
  writeFileSync(path.join(root, 'early.md'), '# Early notes\n\nThe quartermaster rotates the signing keys every full moon.\n');
  writeFileSync(path.join(root, 'team.md'), '# Team\n\nStandups happen at nine sharp in the glasshouse meeting room.\n');
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

describe('the CLI beside a running server on the same data directory', () => {
  let adminToken: string;

  it('ingests through the running server: its search finds the document, the workspace has an owner, and it survives a restart', async () => {
    server = await spawnServer([], serverEnv);
    const signup = await api(server.url, undefined, 'POST', '/api/auth/signup', { email: 'me@example.com', password: PASSWORD });
    expect(signup.status).toBe(201);
    adminToken = signup.body.accessToken;

    const ing = await docupod(['ingest', path.join(root, 'runbook.md'), '--workspace', 'ops']);
    expect(ing.code, ing.stderr).toBe(0);
    // A running server indexes in the background: without --wait the command returns after the upload.
    expect(ing.stdout).toContain('to workspace ops (new)');
    expect(ing.stdout).toMatch(/^queued {2}runbook\.md$/m);

    const results = await searchUntilFound(server.url, adminToken, 'ops', 'nightly backup ledger', 'runbook.md');
    expect(results[0].text).toContain('ninety-one days');
    // Created through the API by the local operator, who acts as the instance's first admin: its owner.
    const members = await api(server.url, adminToken, 'GET', '/api/workspaces/ops/members');
    expect(members.status).toBe(200);
    expect(members.body).toEqual([expect.objectContaining({ email: 'me@example.com', role: 'owner' })]);

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(existsSync(path.join(dataDir, 'server.json'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'owner.lock'))).toBe(false);

    server = await spawnServer([], serverEnv);
    adminToken = await login(server.url, 'me@example.com');
    const again = await searchUntilFound(server.url, adminToken, 'ops', 'nightly backup ledger', 'runbook.md');
    expect(again[0].text).toContain('ninety-one days');
  }, 120_000);

  it('waits with --wait, and searches and asks through the running server', async () => {
    const ing = await docupod(['ingest', path.join(root, 'team.md'), '--workspace', 'ops', '--wait']);
    expect(ing.code, ing.stderr).toBe(0);
    expect(ing.stdout).toMatch(/^1\/1 indexed/m);
    // Indexed by the server itself, not in a copy of its data.
    expect((await api(server!.url, adminToken, 'POST', '/api/workspaces/ops/search', { query: 'standups glasshouse', k: 3 })).body.results[0]).toMatchObject({ source: 'team.md' });

    const found = await docupod(['search', 'standups glasshouse', '--workspace', 'ops', '--json']);
    expect(found.code, found.stderr).toBe(0);
    expect(JSON.parse(found.stdout).results[0]).toMatchObject({ source: 'team.md' });

    const ask = await docupod(['ask', 'When do standups happen?', '--workspace', 'ops', '--json']);
    expect(ask.code, ask.stderr).toBe(0);
    const answer = JSON.parse(ask.stdout);
    expect(answer.answer).toContain('nine sharp');
    expect(answer.citations[0]).toMatchObject({ source: 'team.md' });
  }, 120_000);

  it('creates users and API keys through the admin API of the running server, and refuses to migrate beside it', async () => {
    const user = await docupod(['user', 'create', '--email', 'bot@example.com', '--password-stdin'], {}, `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    expect(user.stdout).toMatch(/^created member bot@example.com/m);
    const key = await docupod(['apikey', 'create', '--email', 'bot@example.com', '--name', 'ci']);
    expect(key.code, key.stderr).toBe(0);
    const me = await api(server!.url, key.stdout.trim(), 'GET', '/api/me');
    expect(me.body).toMatchObject({ user: { email: 'bot@example.com', role: 'member' }, via: 'apikey' });

    const migrate = await docupod(['migrate']);
    expect(migrate.code).toBe(1);
    expect(migrate.stderr).toContain(`in use by docupod serve (pid ${server!.child.pid}`);
    expect(migrate.stderr).toContain('A server applies the migrations when it starts');
  }, 120_000);

  it('refuses a second server on the same data directory, naming the first one', async () => {
    const second = await docupod(['serve', '--port', '0', '--host', '127.0.0.1'], { DOCUPOD_LOG_LEVEL: 'error' });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`the data directory ${dataDir} is in use by docupod serve (pid ${server!.child.pid}`);
    expect(second.stderr).toContain(`serving ${server!.url}`);
    expect(second.stderr).toContain('Stop that process first');
    // The first one is unharmed.
    expect((await fetch(`${server!.url}/readyz`)).status).toBe(200);
  }, 60_000);

  it('starts again on the data directory of a SIGKILLed server (stale lock taken over), with the data intact', async () => {
    await server!.stop('SIGKILL');
    const t0 = performance.now();
    server = await spawnServer([], serverEnv);
    const restartSeconds = (performance.now() - t0) / 1000;
    expect(restartSeconds).toBeLessThan(40);
    const results = await searchUntilFound(server.url, await login(server.url, 'me@example.com'), 'ops', 'nightly backup ledger', 'runbook.md');
    expect(results[0].text).toContain('ninety-one days');
    await server.stop('SIGTERM');
    server = undefined;
  }, 120_000);

  it('stops at once, saying why, when its lock on the data directory is taken away', async () => {
    server = await spawnServer([], serverEnv);
    rmSync(path.join(dataDir, 'owner.lock'), { recursive: true });
    expect(await server.exited).toBe(1);
    expect(server.logs.some((l) => l.level === 60 && String(l.msg).includes('lost the lock on the data directory'))).toBe(true);
    server = undefined;
  }, 60_000);
});

describe('the local operator', () => {
  it('owns what the CLI creates before anyone signs up, and the first person to sign up still becomes the admin', async () => {
    const dir = path.join(root, 'fresh');
    server = await spawnServer([], { ...serverEnv, DOCUPOD_DATA_DIR: dir });
    try {
      const ing = await docupod(['ingest', path.join(root, 'early.md'), '--workspace', 'early', '--wait'], { DOCUPOD_DATA_DIR: dir });
      expect(ing.code, ing.stderr).toBe(0);
      const token = (JSON.parse(readFileSync(path.join(dir, 'server.json'), 'utf8')) as { token: string }).token;
      const members = await api(server.url, token, 'GET', '/api/workspaces/early/members');
      expect(members.body).toEqual([expect.objectContaining({ email: 'operator@localhost', role: 'owner' })]);

      const first = await api(server.url, undefined, 'POST', '/api/auth/signup', { email: 'first@example.com', password: PASSWORD });
      expect(first.status).toBe(201);
      expect(first.body.user.role).toBe('admin');
      // From now on the local operator acts as that admin.
      expect((await api(server.url, token, 'GET', '/api/me')).body).toMatchObject({ user: { email: 'first@example.com' }, via: 'local' });
    } finally {
      await server.stop('SIGTERM');
      server = undefined;
    }
  }, 120_000);
});

describe('the CLI when the data directory is held by a process it cannot reach', () => {
  it('refuses, naming the process and --url, and leaves the directory alone', async () => {
    const dir = path.join(root, 'held');
    // A live owner that serves nothing: it holds the lock and writes no server.json.
    const holder = spawn(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(path.resolve('dist/storage/data-dir-lock.js')).href)}); await m.lockDataDir(${JSON.stringify(dir)}); console.log('locked'); setInterval(() => {}, 1000);`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
        createInterface({ input: holder.stdout! }).once('line', () => resolve());
      });
      const r = await docupod(['search', 'anything', '--workspace', 'ops'], { DOCUPOD_DATA_DIR: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`is in use by docupod (pid ${holder.pid}`);
      expect(r.stderr).toContain('--url <url> --api-key <key>');
      expect(existsSync(path.join(dir, 'pglite'))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  }, 60_000);

  it('waits for a server that is still starting (npm start, then the CLI at once), and goes through it', async () => {
    const dir = path.join(root, 'starting');
    const starting = spawnServer([], { DOCUPOD_DATA_DIR: dir, DOCUPOD_SHUTDOWN_DELAY: '0s' });
    starting.catch(() => {}); // awaited below
    // The server holds the lock (owner.json) but listens only after opening and migrating a new database: seconds.
    for (let i = 0; i < 400 && !existsSync(path.join(dir, 'owner.json')); i++) await new Promise((r) => setTimeout(r, 25));
    expect(existsSync(path.join(dir, 'server.json'))).toBe(false);
    const r = await docupod(['ingest', path.join(root, 'early.md'), '--workspace', 'early'], { DOCUPOD_DATA_DIR: dir });
    const srv = await starting;
    try {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/waiting for docupod serve \(pid \d+.*\) to finish starting/);
      expect(r.stdout).toContain('to workspace early (new)');
      const { token } = JSON.parse(readFileSync(path.join(dir, 'server.json'), 'utf8')) as { token: string };
      const results = await searchUntilFound(srv.url, token, 'early', 'quartermaster signing keys', 'early.md');
      expect(results[0].text).toContain('full moon');
    } finally {
      await srv.stop();
    }
  }, 90_000);

  it('runs a server of its own on a free directory and leaves no lock or server.json behind', async () => {
    const dir = path.join(root, 'own');
    const r = await docupod(['ingest', path.join(root, 'team.md'), '--workspace', 'mine'], { DOCUPOD_DATA_DIR: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1\/1 indexed/m); // its server stops with it: it always waits
    expect(existsSync(path.join(dir, 'owner.lock'))).toBe(false);
    expect(existsSync(path.join(dir, 'server.json'))).toBe(false);
    expect(existsSync(path.join(dir, 'owner.json'))).toBe(false);
  }, 60_000);
});

describe.runIf(testDatabaseUrl())('the CLI with DATABASE_URL (Postgres)', () => {
  it('needs no lock: it serves the command in-process against the database and finds what it ingested', async () => {
    const db = await freshDatabase('postgres');
    const dir = path.join(root, 'pg-blobs');
    const env = { DATABASE_URL: db.url!, DOCUPOD_DATA_DIR: dir };
    try {
      const ing = await docupod(['ingest', path.join(root, 'runbook.md'), '--workspace', 'pg-ops'], env);
      expect(ing.code, ing.stderr).toBe(0);
      expect(ing.stdout).toMatch(/^1\/1 indexed/m);
      expect(existsSync(path.join(dir, 'owner.lock'))).toBe(false);
      const found = await docupod(['search', 'ledger backup', '--workspace', 'pg-ops', '--json'], env);
      expect(found.code, found.stderr).toBe(0);
      expect(JSON.parse(found.stdout).results[0]).toMatchObject({ source: 'runbook.md' });
    } finally {
      await db.close();
    }
  }, 120_000);
});
