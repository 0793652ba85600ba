import { trace, type Tracer } from '@opentelemetry/api';

// OpenTelemetry is wired but off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: with no endpoint the API's no-op tracer
// answers every call, so pipeline code can always create spans at no cost.

export interface Tracing {
  tracer: Tracer;
  enabled: boolean;
  shutdown(): Promise<void>;
}

export async function startTracing(opts: { endpoint?: string; serviceName: string; roles: string }): Promise<Tracing> {
  if (!opts.endpoint) return { tracer: trace.getTracer('docupod'), enabled: false, shutdown: async () => {} };
  // Loaded lazily: the SDK is sizeable and most installs never enable it.
  const [{ NodeSDK }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName, 'docupod.roles': opts.roles }),
    traceExporter: new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/$/, '')}/v1/traces` }),
  });
  sdk.start();
  return { tracer: trace.getTracer('docupod'), enabled: true, shutdown: () => sdk.shutdown() };
}
