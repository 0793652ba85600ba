import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import { buildMetricsServer } from '../http/metrics-endpoint.js';
import type { Logger } from '../observability/logger.js';
import { createMetricsRegistry, type Registry } from '../observability/metrics.js';
import { startTracing } from '../observability/tracing.js';
import { graphOptions, internalLayout, M, parseRoles, requireInternalToken, resolveModules, type ModuleName } from './graph.js';
import { inits } from './inits.js';
import { startModules, type RunningModules } from './manager.js';

export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

export interface Runtime extends RunningModules {
  app: FastifyInstance;
  metrics: Registry;
  /** The /metrics listener when DOCUPOD_METRICS_PORT is set (then `app` serves no /metrics); main listens on it. */
  metricsApp?: FastifyInstance;
}

/** Builds every module the roles need; main then listens on `app`, tests call `app.inject()`. */
export async function startRuntime(
  config: Config,
  log: Logger,
  opts: {
    metrics?: Registry;
    provided?: Partial<Record<ModuleName, unknown>>;
    /**
     * Whether other processes will reach this runtime over the network (`docupod serve` listens; a CLI command's
     * runtime does not). Only then may roles serve their internal API to callers elsewhere.
     */
    listens?: boolean;
  } = {},
): Promise<Runtime> {
  const { metrics } = opts;
  const listens = opts.listens ?? false;
  const targets = parseRoles(config.roles);
  // Before anything opens: a split layout without the shared token refuses to start, naming the variable.
  requireInternalToken(internalLayout(new Set(resolveModules(targets, graphOptions(config))), listens), config.auth.internalToken);
  const registry = metrics ?? createMetricsRegistry({ defaultMetrics: config.observability.metricsEnabled, labels: { role: config.roles } });
  const tracing = await startTracing({ endpoint: config.observability.otlpEndpoint, serviceName: config.observability.serviceName, roles: config.roles });
  let running: RunningModules;
  try {
    running = await startModules(targets, inits, { config, log, metrics: registry, version: VERSION, listens }, opts.provided);
  } catch (err) {
    await tracing.shutdown();
    throw err;
  }
  const app = running.get<FastifyInstance>(M.http);
  await app.ready();
  const { metricsPort, metricsToken } = config.observability;
  const metricsApp = metricsPort === undefined ? undefined : await buildMetricsServer({ registry, token: metricsToken });
  return {
    ...running,
    app,
    metrics: registry,
    metricsApp,
    stop: async () => {
      await running.stop();
      await metricsApp?.close();
      await tracing.shutdown();
    },
  };
}
