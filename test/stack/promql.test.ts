import { describe, expect, it } from 'vitest';
import { exportedSeriesNames, selectedMetrics, shippedExpressions, unknownMetrics } from './promql.js';

// The checker the stack test runs on the shipped dashboards and rules, on expressions whose answer is known: it must
// fail where a dashboard would show "no data".

const exposition = `# HELP http_request_duration_seconds latency
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",route="/a"} 1
http_request_duration_seconds_sum{route="/a"} 0.05
http_request_duration_seconds_count{route="/a"} 1
# HELP docupod_chat_errors_total errors
# TYPE docupod_chat_errors_total counter
# HELP docupod_jobs_queue_depth depth
# TYPE docupod_jobs_queue_depth gauge
docupod_jobs_queue_depth{name="ingest.parse",state="queued"} 0
`;

describe('the PromQL metric check', () => {
  const exported = exportedSeriesNames(exposition);

  it('takes a histogram’s series names from its samples and its TYPE, never the bare family name', () => {
    expect([...exported].sort()).toEqual(['docupod_chat_errors_total', 'docupod_jobs_queue_depth', 'http_request_duration_seconds_bucket', 'http_request_duration_seconds_count', 'http_request_duration_seconds_sum']);
  });

  it('finds the selectors of nested expressions, not label values, functions or grouping labels', () => {
    const { names, problems } = selectedMetrics('histogram_quantile(0.99, sum by (le, rate) (rate(a_bucket{route!~"b_total|.*"}[$__rate_interval]))) / on() group_left max({__name__="c"}) or d:rec:5m offset 1m');
    expect(problems).toEqual([]);
    expect(names).toEqual(['a_bucket', 'c', 'd:rec:5m']);
  });

  it('reports a syntax error and a selector with only a name regex', () => {
    expect(selectedMetrics('sum(rate(x[5m]) by (a)').problems).not.toEqual([]);
    expect(selectedMetrics('{__name__=~"docupod_.*"}').problems).toEqual(['selector without a metric name: {__name__=~"docupod_.*"}']);
  });

  it('accepts exported names, recording-rule outputs and Prometheus’s own series; rejects the rest', () => {
    const exprs = [
      { where: 'rec', record: 'job:http:rate5m', expr: 'sum(rate(http_request_duration_seconds_count[5m]))' },
      { where: 'uses rec', expr: 'job:http:rate5m > 1 and on() up == 1' },
      { where: 'bare histogram', expr: 'rate(http_request_duration_seconds[5m])' },
      { where: 'typo', expr: 'docupod_jobs_queue_dept > 100' },
      { where: 'never incremented counter', expr: 'rate(docupod_chat_errors_total[5m])' },
    ];
    expect(unknownMetrics(exprs, exported)).toEqual([
      'bare histogram: http_request_duration_seconds is not exported by any role (a histogram: select http_request_duration_seconds_bucket, _sum or _count)',
      'typo: docupod_jobs_queue_dept is not exported by any role',
    ]);
  });

  it('reads every rule and dashboard expression the chart ships', () => {
    const all = shippedExpressions();
    expect(all.filter((e) => e.where.startsWith('rules/')).length).toBeGreaterThanOrEqual(6);
    expect(all.filter((e) => e.where.startsWith('dashboards/')).length).toBeGreaterThanOrEqual(12);
    for (const e of all) expect(selectedMetrics(e.expr).problems, e.where).toEqual([]);
  });
});
