import { Counter, Histogram, metric, type Registry } from '../../observability/metrics.js';
import type { ErrorReason } from './tensors.js';

// Per-model metrics on the shared registry. Labels stay bounded: `model` is a name from the repository (never a
// name or version string taken from a request: unknown models count as "_unknown"), `api` is v2 or predict, and
// `reason` comes from the fixed ErrorReason list.

export const UNKNOWN_MODEL = '_unknown';

export interface ModelMetrics {
  requests: Counter<'model' | 'api'>;
  duration: Histogram<'model' | 'api'>;
  batchSize: Histogram<'model'>;
  errors: Counter<'model' | 'reason'>;
  loads: Counter<'model' | 'outcome'>;
}

export function modelMetrics(registry: Registry): ModelMetrics {
  return {
    requests: metric(
      registry,
      'docupod_models_requests_total',
      () => new Counter({ name: 'docupod_models_requests_total', help: 'Inference requests by model and API (v2 or predict)', labelNames: ['model', 'api'] as const, registers: [registry] }),
    ),
    duration: metric(
      registry,
      'docupod_models_request_duration_seconds',
      () =>
        new Histogram({
          name: 'docupod_models_request_duration_seconds',
          help: 'Inference latency (validation, queueing, run) by model and API',
          labelNames: ['model', 'api'] as const,
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers: [registry],
        }),
    ),
    batchSize: metric(
      registry,
      'docupod_models_batch_size',
      () =>
        new Histogram({
          name: 'docupod_models_batch_size',
          help: 'Rows per model run after micro-batching (count = runs, sum = rows)',
          labelNames: ['model'] as const,
          buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
          registers: [registry],
        }),
    ),
    errors: metric(
      registry,
      'docupod_models_errors_total',
      () => new Counter({ name: 'docupod_models_errors_total', help: 'Failed inference requests by model and reason', labelNames: ['model', 'reason'] as const, registers: [registry] }),
    ),
    loads: metric(
      registry,
      'docupod_models_loads_total',
      () => new Counter({ name: 'docupod_models_loads_total', help: 'Model (re)loads by outcome', labelNames: ['model', 'outcome'] as const, registers: [registry] }),
    ),
  };
}

export type { ErrorReason };
