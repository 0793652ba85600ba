import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';

// What the shipped dashboards and rules ask Prometheus for, against what the running roles export. The expressions
// are parsed by Prometheus's own PromQL grammar (@prometheus-io/lezer-promql, the one its web UI uses), not by
// regexes: a metric name inside a label value, a function name or a `by (…)` list is then never taken for a selector.

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

const ROOT = path.resolve(import.meta.dirname, '../..');
export const RULES_DIR = path.join(ROOT, 'deploy/helm/docupod/files/rules');
export const DASHBOARDS_DIR = path.join(ROOT, 'deploy/helm/docupod/files/dashboards');

/** Series Prometheus itself writes for every target (not exported by anyone's /metrics). */
export const PROMETHEUS_SERIES = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added'];

export interface Expression { where: string; expr: string; record?: string }

/** Every PromQL expression the chart ships: rule `expr`s (with their `record` name) and dashboard panel targets. */
export function shippedExpressions(): Expression[] {
  const out: Expression[] = [];
  for (const f of readdirSync(RULES_DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    const rules = parseYaml(readFileSync(path.join(RULES_DIR, f), 'utf8')) as Array<{ alert?: string; record?: string; expr: string }>;
    for (const r of rules) out.push({ where: `rules/${f}: ${r.alert ?? r.record}`, expr: r.expr, record: r.record });
  }
  for (const f of readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json')).sort()) {
    const d = JSON.parse(readFileSync(path.join(DASHBOARDS_DIR, f), 'utf8')) as { panels?: Panel[]; templating?: { list?: Array<{ name: string; type: string; query?: unknown }> } };
    const walk = (panels: Panel[] = []) => {
      for (const p of panels) {
        for (const t of p.targets ?? []) if (t.expr) out.push({ where: `dashboards/${f}: ${p.title} (${t.refId})`, expr: t.expr });
        walk(p.panels); // rows nest panels
      }
    };
    walk(d.panels);
    // Query variables: Grafana's label_values(metric, label) and query_result(expr) wrap PromQL.
    for (const v of d.templating?.list ?? []) {
      if (v.type !== 'query') continue;
      const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query ?? '';
      const m = /^\s*(?:label_values|query_result)\((.*)\)\s*$/s.exec(q);
      const expr = m ? (/^label_values/.test(q) ? m[1]!.replace(/,\s*\w+\s*$/, '') : m[1]!) : q;
      if (expr.trim()) out.push({ where: `dashboards/${f}: variable ${v.name}`, expr });
    }
  }
  return out;
}
interface Panel { title: string; targets?: Array<{ refId: string; expr?: string }>; panels?: Panel[] }

/** Grafana's interval variables become a duration, so the expression is plain PromQL. */
const grafanaToPromql = (expr: string) => expr.replace(/\$__(?:rate_interval|interval|range)\b|\$\{__(?:rate_interval|interval|range)\}/g, '5m');

/**
 * The metric names an expression selects, and its problems: a syntax error, or a selector that names no metric by
 * `__name__` equality (a regex on the name would pass for anything, so it is reported rather than guessed at).
 */
export function selectedMetrics(expr: string): { names: string[]; problems: string[] } {
  const text = grafanaToPromql(expr);
  const names: string[] = [];
  const problems: string[] = [];
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError) {
        problems.push(`syntax error at ${node.from}: …${text.slice(Math.max(0, node.from - 20), node.from + 20)}…`);
        return false;
      }
      if (node.name !== 'VectorSelector') return undefined;
      const n = node.node;
      const id = n.getChild('Identifier');
      if (id) names.push(text.slice(id.from, id.to));
      else {
        // {__name__="x"}, or Prometheus 3's {"x"} (a quoted name alone) and {"__name__"="x"}.
        const str = (lit: SyntaxNode | null) => (lit ? (JSON.parse(text.slice(lit.from, lit.to)) as string) : undefined);
        let found: string | undefined;
        for (let m = n.getChild('LabelMatchers')?.firstChild; m; m = m.nextSibling) {
          if (m.name === 'QuotedLabelName') found = str(m.getChild('StringLiteral'));
          const label = m.getChild('LabelName') ?? m.getChild('QuotedLabelName');
          const labelText = label?.name === 'LabelName' ? text.slice(label.from, label.to) : str(label?.getChild('StringLiteral') ?? null);
          const op = m.getChild('MatchOp');
          if (labelText === '__name__' && op && text.slice(op.from, op.to) === '=') found = str(m.getChild('StringLiteral'));
        }
        if (found) names.push(found);
        else problems.push(`selector without a metric name: ${text.slice(n.from, n.to)}`);
      }
      return false; // nothing below a selector is another selector
    },
  });
  return { names, problems };
}

/**
 * Series names one /metrics exposition offers: every sample line's name, and for families declared without samples
 * yet (a labelled counter nobody incremented) the names their TYPE implies: a histogram `x` is only ever stored as
 * `x_bucket`, `x_sum` and `x_count`, never as `x`; a summary as `x`, `x_sum` and `x_count`.
 */
export function exportedSeriesNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      const [, name, kind] = type;
      const suffixes = kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const s of suffixes) names.add(name + s);
    } else if (line && !line.startsWith('#')) names.add(/^[^{\s]+/.exec(line)![0]);
  }
  return names;
}

/** For each expression, the metric names it selects that are neither exported nor recorded nor Prometheus's own. */
export function unknownMetrics(expressions: Expression[], exported: Set<string>): string[] {
  const recorded = new Set(expressions.flatMap((e) => (e.record ? [e.record] : [])));
  const known = (n: string) => exported.has(n) || recorded.has(n) || PROMETHEUS_SERIES.includes(n);
  const out: string[] = [];
  for (const e of expressions) {
    const { names, problems } = selectedMetrics(e.expr);
    for (const p of problems) out.push(`${e.where}: ${p}`);
    for (const n of names) if (!known(n)) out.push(`${e.where}: ${n} is not exported by any role${exported.has(`${n}_bucket`) ? ` (a histogram: select ${n}_bucket, _sum or _count)` : ''}`);
    if (names.length === 0 && problems.length === 0) out.push(`${e.where}: selects no metric at all`);
  }
  return out;
}
