import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateObject, type Obj } from './k8s-schema.js';
import { CHART, k8sTools, ROOT, run } from './tools.js';

// The Helm chart: lint, render a matrix of values files, validate every object against the Kubernetes schemas
// (including unknown fields), apply a security/availability policy to every workload, and check that the values
// schema rejects bad input. Offline: helm comes from an npm package (tools.ts).


const VALUES_DIR = path.join(ROOT, 'test/deploy/values');
const MATRIX = readdirSync(VALUES_DIR).filter((f) => f.endsWith('.yaml')).sort();

function helm(args: string[]) {
  return run(k8sTools().helm, args);
}

function render(valuesFile?: string, extra: string[] = []): Obj[] {
  const args = ['template', 'rel', CHART, '--namespace', 'docupod', '--kube-version', '1.29.0', ...extra];
  if (valuesFile) args.push('-f', path.join(VALUES_DIR, valuesFile));
  const r = helm(args);
  if (r.status !== 0) throw new Error(`helm template ${valuesFile}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean);
}

function workloads(objs: Obj[]): Array<{ obj: Obj; pod: any; labels: Record<string, string> }> {
  const out = [];
  for (const o of objs) {
    if (['Deployment', 'StatefulSet', 'Job'].includes(o.kind)) out.push({ obj: o, pod: o.spec.template.spec, labels: o.spec.template.metadata?.labels ?? {} });
    if (o.kind === 'Pod') out.push({ obj: o, pod: o.spec, labels: o.metadata.labels ?? {} });
  }
  return out;
}

const selects = (sel: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined, labels: Record<string, string>) =>
  !!sel && !sel.matchExpressions?.length && Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

describe('helm chart', () => {
  it('passes helm lint --strict with default values and every values file', () => {
    const r = helm(['lint', '--strict', CHART]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const f of MATRIX) {
      const rf = helm(['lint', '--strict', CHART, '-f', path.join(VALUES_DIR, f)]);
      expect(rf.status, `${f}: ${rf.stdout}${rf.stderr}`).toBe(0);
    }
  });

  it.each(MATRIX)('renders %s into objects that pass schema validation, unknown fields included', async (file) => {
    const objs = render(file);
    expect(objs.length).toBeGreaterThan(5);
    const errors = (await Promise.all(objs.map(validateObject))).flat();
    expect(errors).toEqual([]);
  });

  it('the unknown-field check finds a misspelt field (control)', async () => {
    const d = render('embedded.yaml').find((o) => o.kind === 'Deployment')!;
    d.spec.replica = 1;
    d.spec.template.spec.containers[0].securityContxt = {};
    const errors = await validateObject(d);
    expect(errors).toEqual(expect.arrayContaining([expect.stringMatching(/unknown field \/spec\/replica$/), expect.stringMatching(/containers\/0\/securityContxt$/)]));
  });

  it.each(MATRIX)('%s: every workload is non-root, read-only, capability-free, bounded, probed and network-policed', (file) => {
    const objs = render(file);
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
    const problems: string[] = [];
    for (const { obj, pod, labels } of workloads(objs)) {
      const name = `${obj.kind}/${obj.metadata.name}`;
      const psc = pod.securityContext ?? {};
      if (psc.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${name}: seccompProfile is not RuntimeDefault`);
      if (pod.automountServiceAccountToken !== false) problems.push(`${name}: service account token is mounted`);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext ?? {};
        const nonRoot = (sc.runAsNonRoot ?? psc.runAsNonRoot) === true && (sc.runAsUser ?? psc.runAsUser ?? 1) !== 0;
        if (!nonRoot) problems.push(`${name}/${c.name}: may run as root`);
        if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}/${c.name}: root filesystem is writable`);
        if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}/${c.name}: privilege escalation allowed`);
        if (JSON.stringify(sc.capabilities?.drop) !== '["ALL"]' || sc.capabilities?.add?.length) problems.push(`${name}/${c.name}: capabilities not all dropped`);
        if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory || !c.resources?.limits?.memory) problems.push(`${name}/${c.name}: resources missing`);
        if (obj.kind === 'Deployment' || obj.kind === 'StatefulSet') {
          for (const p of ['startupProbe', 'livenessProbe', 'readinessProbe']) if (!c[p]) problems.push(`${name}/${c.name}: no ${p}`);
        }
        if (obj.kind === 'Deployment' && c.name === 'docupod') {
          if (c.livenessProbe?.httpGet?.path !== '/healthz') problems.push(`${name}: liveness is not /healthz`);
          if (c.readinessProbe?.httpGet?.path !== '/readyz') problems.push(`${name}: readiness is not /readyz`);
        }
      }
      if (!policies.some((np) => selects(np.spec.podSelector, labels))) problems.push(`${name}: no NetworkPolicy selects its pods`);
    }
    // A PDB for every role that can have more than one replica.
    const pdbs = objs.filter((o) => o.kind === 'PodDisruptionBudget');
    const hpas = objs.filter((o) => o.kind === 'HorizontalPodAutoscaler');
    for (const d of objs.filter((o) => o.kind === 'Deployment')) {
      const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === d.metadata.name);
      const canScale = (d.spec.replicas ?? 1) > 1 || (hpa?.spec.maxReplicas ?? 1) > 1;
      if (canScale && !pdbs.some((p) => selects(p.spec.selector, d.spec.template.metadata.labels)))
        problems.push(`Deployment/${d.metadata.name}: can run ${hpa?.spec.maxReplicas ?? d.spec.replicas} replicas but no PDB`);
    }
    expect(problems).toEqual([]);
  });

  it('distributed mode: one Deployment, Service, HPA or PDB per role; retrieval reachable only from gateway and chat', () => {
    const objs = render('distributed-nginx.yaml');
    const deployments = objs.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name).sort();
    expect(deployments).toEqual(['chat', 'gateway', 'ingest', 'models', 'retrieval', 'web'].map((r) => `rel-docupod-${r}`));
    for (const d of objs.filter((o) => o.kind === 'Deployment')) {
      expect(d.spec.template.spec.containers[0].args).toEqual(['serve', '--role', d.metadata.labels!['app.kubernetes.io/component']]);
      expect(d.spec.template.spec.topologySpreadConstraints?.length).toBeGreaterThan(0);
    }
    const np = objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'rel-docupod-retrieval')!;
    const from = np.spec.ingress.flatMap((r: any) => r.from).map((f: any) => f.podSelector?.matchLabels?.['app.kubernetes.io/component'] ?? (f.namespaceSelector ? 'namespace' : '?'));
    expect(from.filter((c: string) => c !== 'namespace').sort()).toEqual(['chat', 'gateway']);
    // the only namespace-wide rule on retrieval is the Prometheus scrape
    expect(np.spec.ingress.filter((r: any) => r.from.some((f: any) => f.namespaceSelector)).length).toBe(1);
    const ingressNp = objs.filter((o) => o.kind === 'NetworkPolicy' && o.spec.ingress?.some((r: any) => r.from?.some((f: any) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx')));
    expect(ingressNp.map((o) => o.metadata.name).sort()).toEqual(['rel-docupod-gateway', 'rel-docupod-models', 'rel-docupod-web']);
    const job = objs.find((o) => o.kind === 'Job')!;
    expect(job.metadata.annotations!['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);
    const cm = objs.find((o) => o.kind === 'ConfigMap')!;
    expect(cm.data.DOCUPOD_RETRIEVAL_URL).toBe('http://rel-docupod-retrieval:80');
  });

  it.each(['distributed-nginx.yaml', 'existing-secret.yaml'])('%s: the models pods get the shared database and JWT secret, so users\' keys work through the Ingress', (file) => {
    const objs = render(file);
    const secretName = file === 'existing-secret.yaml' ? 'docupod-secrets' : 'rel-docupod';
    const deployments = objs.filter((o) => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name)).toContain('rel-docupod-models');
    for (const d of deployments) {
      const env = d.spec.template.spec.containers[0].env;
      for (const name of ['DOCUPOD_JWT_SECRET', 'DATABASE_URL'])
        expect(env.find((e: any) => e.name === name)?.valueFrom.secretKeyRef.name, `${d.metadata.name} ${name}`).toBe(secretName);
    }
    // Inference stays authenticated (the default): the chart does not open it.
    expect(objs.find((o) => o.kind === 'ConfigMap')!.data.DOCUPOD_MODELS_INFERENCE ?? 'authenticated').toBe('authenticated');
  });

  it('sets per-class streaming and upload settings on the Ingress', () => {
    const ann = (f: string) => render(f).find((o) => o.kind === 'Ingress')!.metadata.annotations!;
    expect(ann('distributed-nginx.yaml')).toMatchObject({ 'nginx.ingress.kubernetes.io/proxy-buffering': 'off', 'nginx.ingress.kubernetes.io/proxy-body-size': '100m' });
    expect(ann('distributed-kong.yaml')).toMatchObject({ 'konghq.com/response-buffering': 'false', 'konghq.com/request-buffering': 'false' });
    expect(ann('distributed-traefik.yaml')).toMatchObject({ 'traefik.ingress.kubernetes.io/router.tls': 'true' });
    const paths = render('distributed-nginx.yaml').find((o) => o.kind === 'Ingress')!.spec.rules[0].http.paths;
    expect(Object.fromEntries(paths.map((p: any) => [p.path, p.backend.service.name]))).toMatchObject({
      '/api': 'rel-docupod-gateway', '/v1': 'rel-docupod-gateway', '/mcp': 'rel-docupod-gateway', '/.well-known/oauth-protected-resource': 'rel-docupod-gateway', '/models': 'rel-docupod-models', '/': 'rel-docupod-web',
    });
  });

  it('generates the JWT secret once and keeps it across upgrades, or uses existingSecret', () => {
    const secret = render('embedded.yaml').find((o) => o.kind === 'Secret')!;
    expect(Buffer.from(secret.data['jwt-secret'], 'base64').toString().length).toBeGreaterThanOrEqual(32);
    expect(secret.metadata.annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep' });
    expect(readFileSync(path.join(CHART, 'templates/secret.yaml'), 'utf8')).toMatch(/lookup "v1" "Secret"/);
    const objs = render('existing-secret.yaml');
    expect(objs.some((o) => o.kind === 'Secret')).toBe(false);
    const env = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env;
    expect(env.find((e: any) => e.name === 'DOCUPOD_JWT_SECRET').valueFrom.secretKeyRef.name).toBe('docupod-secrets');
  });

  it.each(['embedded.yaml', 'distributed-nginx.yaml', 'existing-secret.yaml'])('%s: every pod gets the internal token; /metrics has its own port and token, off the ingress', (file) => {
    const objs = render(file);
    const secretName = file === 'existing-secret.yaml' ? 'docupod-secrets' : 'rel-docupod';
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'rel-docupod')!;
    expect(cm.data.DOCUPOD_METRICS_PORT).toBe('9464');
    expect(cm.data.DOCUPOD_PORT).toBe('8080');
    for (const d of objs.filter((o) => o.kind === 'Deployment' && o.spec.template.spec.containers[0].name === 'docupod')) {
      const c = d.spec.template.spec.containers[0];
      const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef]));
      // Required: a split role without it would refuse to start, so a missing key must stop the pod, not open it.
      expect(env.DOCUPOD_INTERNAL_TOKEN, d.metadata.name).toEqual({ name: secretName, key: 'internal-token' });
      expect(env.DOCUPOD_METRICS_TOKEN, d.metadata.name).toMatchObject({ name: secretName, key: 'metrics-token' });
      expect(Boolean(env.DOCUPOD_METRICS_TOKEN.optional), d.metadata.name).toBe(file === 'existing-secret.yaml');
      expect(c.ports.map((p: any) => `${p.name}:${p.containerPort}`)).toEqual(['http:8080', 'metrics:9464']);
    }
    for (const svc of objs.filter((o) => o.kind === 'Service' && o.metadata.labels?.['app.kubernetes.io/part-of'] === 'docupod' && !/ollama|postgres/.test(o.metadata.name)))
      expect(svc.spec.ports.map((p: any) => `${p.name}:${p.port}`), svc.metadata.name).toEqual(['http:80', 'metrics:9464']);
    for (const ing of objs.filter((o) => o.kind === 'Ingress'))
      for (const p of ing.spec.rules[0].http.paths) expect(p.backend.service.port).toEqual({ name: 'http' });
    // Prometheus may reach the metrics port only; the ingress controller the HTTP port only.
    for (const np of objs.filter((o) => o.kind === 'NetworkPolicy' && o.spec.ingress?.length)) {
      for (const rule of np.spec.ingress) {
        const ports = rule.ports.map((p: any) => p.port);
        if (rule.from.some((f: any) => f.namespaceSelector && !f.namespaceSelector.matchLabels)) expect(ports, np.metadata.name).toEqual([9464]);
        if (rule.from.some((f: any) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'ingress-nginx')) expect(ports, np.metadata.name).toEqual([8080]);
      }
    }
    const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'rel-docupod');
    if (file !== 'existing-secret.yaml') {
      for (const key of ['internal-token', 'metrics-token']) expect(Buffer.from(secret!.data[key], 'base64').toString().length, key).toBeGreaterThanOrEqual(32);
    }
  });

  it('scrapes the metrics port with the bearer token from the Secret', () => {
    const sm = render('monitoring.yaml').find((o) => o.kind === 'ServiceMonitor')!;
    expect(sm.spec.endpoints).toEqual([
      expect.objectContaining({ port: 'metrics', path: '/metrics', authorization: { type: 'Bearer', credentials: { name: 'rel-docupod', key: 'metrics-token' } } }),
    ]);
  });

  it('monitoring.enabled adds a ServiceMonitor, PrometheusRule and dashboard ConfigMap', () => {
    const kinds = render('monitoring.yaml').map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(expect.arrayContaining(['ServiceMonitor/rel-docupod', 'PrometheusRule/rel-docupod', 'ConfigMap/rel-docupod-dashboards']));
    expect(render('embedded.yaml').some((o) => o.kind === 'ServiceMonitor')).toBe(false);
  });

  it('documents every top-level value in the chart README and ships NOTES.txt and a helm test pod', () => {
    const readme = readFileSync(path.join(CHART, 'README.md'), 'utf8');
    const values = parseAllDocuments(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'))[0]!.toJS() as Record<string, unknown>;
    const missing = Object.keys(values).filter((k) => !readme.includes(`| \`${k}`));
    expect(missing).toEqual([]);
    const test = render('embedded.yaml').find((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test')!;
    expect(test.spec.containers[0].args[0]).toContain('/readyz');
  });

  it.each([
    ['a wrong type', ['--set', 'roles.gateway.replicas=two'], /replicas/],
    ['an unknown ingress class', ['--set', 'ingress.className=haproxy'], /className.*nginx.*traefik.*kong/s],
    ['replicas < 0', ['--set', 'roles.chat.replicas=-1'], /replicas.*minimum/s],
    ['an unknown mode', ['--set', 'mode=cluster'], /mode/],
    ['an unknown top-level key', ['--set', 'replicaCount=2'], /replicaCount/],
    ['a short JWT secret', ['--set', 'secrets.jwtSecret=short'], /jwtSecret/],
    ['distributed mode without a database', ['--set', 'mode=distributed'], /needs Postgres/],
    ['metrics on the HTTP port', ['--set', 'metricsPort=8080'], /metricsPort must differ from containerPort/],
    ['a short metrics token', ['--set', 'secrets.metricsToken=short'], /metricsToken/],
    ['the internal token as plain config', ['--set', 'config.DOCUPOD_INTERNAL_TOKEN=abcdefghijklmnopqrstuvwxyz'], /config/],
  ])('rejects %s with a clear message', (_what, args, message) => {
    const r = helm(['template', 'rel', CHART, ...args]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
