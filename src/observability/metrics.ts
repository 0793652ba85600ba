import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/**
 * A registry per process (or per test): nothing is registered globally, so two servers in one test process do not
 * collide. Modules register their own metrics on it.
 */
export function createMetricsRegistry(opts: { defaultMetrics: boolean; labels?: Record<string, string> }): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Returns the metric already registered under `name`, or registers the one `make` builds. */
export function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export interface HttpMetrics {
  duration: Histogram<'route' | 'method' | 'status'>;
}

export function httpMetrics(registry: Registry): HttpMetrics {
  return {
    duration: metric(
      registry,
      'http_request_duration_seconds',
      () =>
        new Histogram({
          name: 'http_request_duration_seconds',
          help: 'HTTP request latency by route template, method and status',
          labelNames: ['route', 'method', 'status'] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers: [registry],
        }),
    ),
  };
}
