import { Counter, Histogram, metric, type Registry } from '../../../observability/metrics.js';

// Metrics by tool. The only label is the tool's name, one of the registered tools (an unknown name never reaches
// them: the SDK answers it before a handler runs), so no tenant data and no caller-chosen values become labels.

export interface McpMetrics {
  duration: Histogram<'tool'>;
  errors: Counter<'tool'>;
}

export function mcpMetrics(registry: Registry): McpMetrics {
  return {
    duration: metric(
      registry,
      'docupod_mcp_tool_duration_seconds',
      () =>
        new Histogram({
          name: 'docupod_mcp_tool_duration_seconds',
          help: 'MCP tool calls by tool: latency (its _count is the number of calls)',
          labelNames: ['tool'] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
          registers: [registry],
        }),
    ),
    errors: metric(
      registry,
      'docupod_mcp_tool_errors_total',
      () => new Counter({ name: 'docupod_mcp_tool_errors_total', help: 'MCP tool calls that answered with an error, by tool', labelNames: ['tool'] as const, registers: [registry] }),
    ),
  };
}
