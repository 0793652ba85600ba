import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { createMetricsRegistry, type Registry } from '../observability/metrics.js';
import { startTracing } from '../observability/tracing.js';
import { M, parseRoles, type ModuleName } from './graph.js';
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
}

/** Builds every module the roles need; main then listens on `app`, tests call `app.inject()`. */
export async function startRuntime(
  config: Config,
  log: Logger,
  opts: { metrics?: Registry; provided?: Partial<Record<ModuleName, unknown>> } = {},
): Promise<Runtime> {
  const { metrics } = opts;
  const targets = parseRoles(config.roles);
  const registry = metrics ?? createMetricsRegistry({ defaultMetrics: config.observability.metricsEnabled, labels: { role: config.roles } });
  const tracing = await startTracing({ endpoint: config.observability.otlpEndpoint, serviceName: config.observability.serviceName, roles: config.roles });
  let running: RunningModules;
  try {
    running = await startModules(targets, inits, { config, log, metrics: registry, version: VERSION }, opts.provided);
  } catch (err) {
    await tracing.shutdown();
    throw err;
  }
  const app = running.get<FastifyInstance>(M.http);
  await app.ready();
  return {
    ...running,
    app,
    metrics: registry,
    stop: async () => {
      await running.stop();
      await tracing.shutdown();
    },
  };
}
