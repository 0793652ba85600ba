import { loadConfig } from '../config/schema.js';
import { readEnv } from '../config/env.js';
import { createLogger } from '../observability/logger.js';
import { startRuntime } from '../modules/runtime.js';
import { DataDirLockedError } from '../storage/data-dir-lock.js';
import { announceServer } from './local-server.js';

export interface ServeOptions {
  role?: string;
  port?: string;
  host?: string;
}

/** `docupod serve`: start the roles, listen, and shut down gracefully on SIGTERM/SIGINT. */
export async function serve(opts: ServeOptions): Promise<void> {
  const env = readEnv();
  if (opts.role) env.DOCUPOD_ROLE = opts.role;
  if (opts.port) env.DOCUPOD_PORT = opts.port;
  if (opts.host) env.DOCUPOD_HOST = opts.host;
  if (opts.port) delete env.PORT; // an explicit flag beats the conventional PORT variable
  const config = loadConfig(env);
  const log = createLogger(config.log, { role: config.roles });
  const t0 = performance.now();
  const runtime = await startRuntime(config, log, { listens: true }).catch((err: unknown) => {
    if (err instanceof DataDirLockedError)
      throw new Error(`${err.message}. Stop that process first, or give this one another DOCUPOD_DATA_DIR (or a DATABASE_URL); the CLI uses the running server by itself`, { cause: err });
    throw err;
  });
  const address = await runtime.app.listen({ host: config.http.host, port: config.http.port });
  const metricsAddress = await runtime.metricsApp?.listen({ host: config.http.host, port: config.observability.metricsPort });
  // The owner of an embedded data directory tells local CLI commands where it listens (and their token).
  const announced = announceServer(runtime);
  log.info({ address, roles: runtime.order.filter((m) => ['gateway', 'ingest', 'retrieval', 'chat', 'models', 'web'].includes(m)), startupMs: Math.round(performance.now() - t0), ...(metricsAddress ? { metrics: metricsAddress } : {}) }, `docupod listening on ${address}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    announced?.withdraw(); // new CLI commands stop picking this server
    // Report not-ready first so load balancers stop sending traffic, wait the configured delay, then stop in
    // reverse start order (the HTTP server drains in-flight requests on close).
    runtime.markStopping();
    log.info({ signal, delayMs: config.http.shutdownDelayMs }, 'shutting down');
    if (config.http.shutdownDelayMs > 0) await new Promise((r) => setTimeout(r, config.http.shutdownDelayMs));
    const hardStop = setTimeout(() => {
      log.error('shutdown took longer than 30s; exiting');
      process.exit(1);
    }, 30_000);
    hardStop.unref();
    await runtime.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}
