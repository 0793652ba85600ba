import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { loadConfig, type Config } from '../config/schema.js';
import { readEnv } from '../config/env.js';
import { M } from '../modules/graph.js';
import { startRuntime, type Runtime } from '../modules/runtime.js';
import { createMetricsRegistry } from '../observability/metrics.js';
import type { AuthService } from '../roles/gateway/auth/service.js';
import type { Database } from '../storage/database.js';
import {
  DataDirLockedError,
  describeOwner,
  inspectDataDir,
  loopbackUrl,
  removeServerInfo,
  writeServerInfo,
  type ServerInfo,
} from '../storage/data-dir-lock.js';
import { RemoteBackend } from './remote.js';

// How a CLI command on this machine reaches the instance, always through its HTTP API (one intake path, the same
// services and authorisation as every other client):
//
// 1. --url (or DOCUPOD_URL) with an API key: that server (remote.ts).
// 2. The data directory is owned by a running docupod that serves the API: it wrote `<dataDir>/server.json` with its
//    URL and a local operator token (roles/gateway/auth/local-operator.ts); the command uses that.
// 3. The data directory is free (or the database is Postgres): the command starts the server itself, in this
//    process, on 127.0.0.1 and a free port, with every role `docupod serve` runs, announces it in server.json (so a
//    second command meanwhile uses it too) and stops it at the end.
// 4. Owned by a process that serves no API here: refuse, naming it and --url.

/**
 * Writes `<dataDir>/server.json` when this process owns an embedded data directory and serves the public API;
 * returns how to withdraw it (also done at exit). Nothing to announce with Postgres or without the gateway.
 */
export function announceServer(runtime: Runtime): { info: ServerInfo; withdraw(): void } | undefined {
  const dataDir = runtime.get<Database>(M.db)?.lockedDataDir;
  const token = runtime.order.includes(M.gateway) ? runtime.get<AuthService>(M.auth).localToken : undefined;
  const address = runtime.app.server.address() as AddressInfo | null;
  if (!dataDir || !token || !address || typeof address === 'string') return undefined;
  const info: ServerInfo = { pid: process.pid, started: new Date().toISOString(), url: loopbackUrl(address), token };
  writeServerInfo(dataDir, info);
  const withdraw = () => removeServerInfo(dataDir);
  process.once('exit', withdraw);
  return {
    info,
    withdraw: () => {
      process.removeListener('exit', withdraw);
      withdraw();
    },
  };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

/** How long a command waits for a server that is still starting (`npm start` in one terminal, the CLI in another). */
const STARTING_SERVER_WAIT_MS = 60_000;

/**
 * The server that owns the data directory, when one does and answers; undefined when the directory is free. An owner
 * that runs the gateway but has not written server.json yet is still starting: wait for it (while it lives). An owner
 * this command cannot reach is an error naming it and --url.
 */
export async function findRunningServer(dataDir: string, waitMs = STARTING_SERVER_WAIT_MS): Promise<ServerInfo | undefined> {
  let found = await inspectDataDir(dataDir);
  const deadline = Date.now() + waitMs;
  let said = false;
  while (found.state === 'owned' && !found.server && found.owner?.servesApi && Date.now() < deadline) {
    if (!said) process.stderr.write(`docupod: waiting for ${describeOwner(found.owner)} to finish starting…\n`);
    said = true;
    await new Promise((r) => setTimeout(r, 200));
    found = await inspectDataDir(dataDir);
  }
  if (found.state === 'free') return undefined;
  if (found.server && (await answers(found.server.url))) return found.server;
  throw new Error(
    `the data directory ${path.resolve(dataDir)} is in use by ${describeOwner(found.owner, found.server)}, which serves no API this command can reach` +
      `${found.server ? ` (${found.server.url} does not answer)` : found.owner?.servesApi ? ` (it has not finished starting after ${Math.round(waitMs / 1000)} s)` : ' (it runs without the gateway role)'}. ` +
      'PGlite serves one process, so the CLI does not open the directory beside it: run the command against a server with ' +
      '--url <url> --api-key <key> (or DOCUPOD_URL and DOCUPOD_API_KEY), or stop that process and try again.',
  );
}

export interface LocalServer {
  url: string;
  token: string;
  config: Config;
  stop(): Promise<void>;
}

/** Every role `docupod serve` runs, in this process, on 127.0.0.1 and a free port; the lock is taken by the db module. */
export async function startLocalServer(): Promise<LocalServer> {
  const env = readEnv();
  env.DOCUPOD_ROLE = 'all';
  const config = loadConfig(env);
  // Logs go to stderr and only at error level unless asked for: stdout carries the command's output (--json).
  const log = pino({ level: env.DOCUPOD_LOG_LEVEL ? config.log.level : 'error', base: { role: 'cli' } }, pino.destination(2));
  const runtime = await startRuntime(config, log, { metrics: createMetricsRegistry({ defaultMetrics: false }) });
  let announced: ReturnType<typeof announceServer>;
  try {
    await runtime.app.listen({ host: '127.0.0.1', port: 0 });
    announced = announceServer(runtime);
  } catch (err) {
    await runtime.stop();
    throw err;
  }
  const address = runtime.app.server.address() as AddressInfo;
  return {
    url: announced?.info.url ?? loopbackUrl(address),
    token: runtime.get<AuthService>(M.auth).localToken!,
    config,
    stop: async () => {
      announced?.withdraw();
      runtime.markStopping();
      await runtime.stop();
    },
  };
}

/** Cases 2–4 above: the command's backend when no --url is given. */
export async function openLocalBackend(): Promise<RemoteBackend> {
  const config = loadConfig(readEnv());
  const { dataDir, databaseUrl } = config.storage;
  const where = databaseUrl ? 'the database' : dataDir;
  const viaServer = (s: ServerInfo) =>
    new RemoteBackend(s.url, s.token, {
      kind: 'local',
      where,
      dataDir,
      authHint: ` (the server at ${s.url} refused the local token of ${path.join(dataDir, 'server.json')}; if it was just restarted, try again)`,
    });
  if (!databaseUrl) {
    const running = await findRunningServer(dataDir);
    if (running) return viaServer(running);
  }
  let server: LocalServer;
  try {
    server = await startLocalServer();
  } catch (err) {
    // Another process took the directory between the look and the lock: use it if it serves.
    if (!(err instanceof DataDirLockedError)) throw err;
    const running = await findRunningServer(dataDir);
    if (!running) throw err;
    return viaServer(running);
  }
  const { ingest, search } = server.config;
  return new RemoteBackend(server.url, server.token, {
    kind: 'embedded',
    where,
    dataDir: databaseUrl ? undefined : dataDir,
    settings: { chunkTokens: ingest.chunkTokens, chunkOverlap: ingest.chunkOverlap, language: search.language },
    close: () => server.stop(),
  });
}
