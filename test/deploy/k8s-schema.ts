export type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; [k: string]: any };

// --- schema validation with an unknown-field check ----------------------------------------------------------------
// kubernetes-models validates types and required fields with compiled validators that read each known property by
// name and enumerate the keys only of map-like objects (labels, annotations). Wrapping the object in a Proxy that
// records which keys the validator touched finds every key no schema knows: an unknown field.

const MODELS: Record<string, () => Promise<any>> = {
  'v1/ConfigMap': () => import('kubernetes-models/v1/ConfigMap'),
  'v1/Secret': () => import('kubernetes-models/v1/Secret'),
  'v1/Service': () => import('kubernetes-models/v1/Service'),
  'v1/ServiceAccount': () => import('kubernetes-models/v1/ServiceAccount'),
  'v1/PersistentVolumeClaim': () => import('kubernetes-models/v1/PersistentVolumeClaim'),
  'v1/Pod': () => import('kubernetes-models/v1/Pod'),
  'apps/v1/Deployment': () => import('kubernetes-models/apps/v1/Deployment'),
  'apps/v1/StatefulSet': () => import('kubernetes-models/apps/v1/StatefulSet'),
  'batch/v1/Job': () => import('kubernetes-models/batch/v1/Job'),
  'autoscaling/v2/HorizontalPodAutoscaler': () => import('kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'),
  'policy/v1/PodDisruptionBudget': () => import('kubernetes-models/policy/v1/PodDisruptionBudget'),
  'networking.k8s.io/v1/Ingress': () => import('kubernetes-models/networking.k8s.io/v1/Ingress'),
  'networking.k8s.io/v1/NetworkPolicy': () => import('kubernetes-models/networking.k8s.io/v1/NetworkPolicy'),
  'gateway.networking.k8s.io/v1/HTTPRoute': () => import('@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute'),
  'monitoring.coreos.com/v1/ServiceMonitor': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'),
  'monitoring.coreos.com/v1/PrometheusRule': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'),
  'argoproj.io/v1alpha1/Application': () => import('@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application'),
  'v1/Namespace': () => import('kubernetes-models/v1/Namespace'),
  'v1/ResourceQuota': () => import('kubernetes-models/v1/ResourceQuota'),
  'v1/LimitRange': () => import('kubernetes-models/v1/LimitRange'),
  'rbac.authorization.k8s.io/v1/Role': () => import('kubernetes-models/rbac.authorization.k8s.io/v1/Role'),
  'rbac.authorization.k8s.io/v1/RoleBinding': () => import('kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding'),
};

function tracked(value: unknown, at: string, seen: Map<string, { keys: string[]; read: Set<string>; enumerated: boolean }>): unknown {
  if (value === null || typeof value !== 'object') return value;
  const entry = { keys: Array.isArray(value) ? [] : Object.keys(value), read: new Set<string>(), enumerated: false };
  seen.set(at, entry);
  return new Proxy(value as object, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== 'string') return v;
      if (!Array.isArray(target)) entry.read.add(key);
      if (Array.isArray(target) && !/^\d+$/.test(key)) return v;
      return tracked(v, `${at}/${key}`, seen);
    },
    ownKeys(target) {
      entry.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

export async function validateObject(obj: Obj): Promise<string[]> {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const load = MODELS[key];
  if (!load) return [`${key}: no schema known to the test`];
  const mod = await load();
  const Model = mod[obj.kind] ?? mod.default;
  const errors: string[] = [];
  try {
    new Model(JSON.parse(JSON.stringify(obj))).validate();
  } catch (err) {
    errors.push(`${key} ${obj.metadata.name}: ${(err as Error).message.slice(0, 500)}`);
  }
  // Unknown fields: run the same validator over a tracking proxy.
  const seen = new Map<string, { keys: string[]; read: Set<string>; enumerated: boolean }>();
  try {
    Model.prototype.validate.call(tracked(JSON.parse(JSON.stringify(obj)), '', seen));
  } catch {
    // already reported above
  }
  // The Gateway API models validate a copy (not through the proxy): no key read at all means no unknown-field check
  // is possible for that kind; its type and required-field validation above still applies.
  if (seen.get('')?.read.size === 0) return errors;
  for (const [at, e] of seen) {
    // Free-form by definition (x-kubernetes-preserve-unknown-fields): Argo CD's inline Helm values.
    if (e.enumerated || /\/helm\/valuesObject(\/|$)/.test(at)) continue;
    for (const k of e.keys) if (!e.read.has(k)) errors.push(`${key} ${obj.metadata.name}: unknown field ${at}/${k}`);
  }
  return errors;
}

