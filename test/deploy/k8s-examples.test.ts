import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateObject, type Obj } from './k8s-schema.js';
import { k8sTools, ROOT, run } from './tools.js';

// deploy/k8s: the Argo CD Application and the multi-team examples render with kustomize and pass schema validation.

describe('deploy/k8s examples', () => {
  it('kustomize renders the namespace, quota, limit range, RBAC and Argo CD Application, all schema-valid', async () => {
    const r = run(k8sTools().kubectl, ['kustomize', path.join(ROOT, 'deploy/k8s')]);
    expect(r.status, r.stderr).toBe(0);
    const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    expect(objs.map((o) => o.kind).sort()).toEqual(['Application', 'LimitRange', 'Namespace', 'ResourceQuota', 'Role', 'Role', 'RoleBinding', 'RoleBinding']);
    expect((await Promise.all(objs.map(validateObject))).flat()).toEqual([]);
    const app = objs.find((o) => o.kind === 'Application')!;
    expect(app.spec.source.path).toBe('deploy/helm/docupod');
    const ns = objs.find((o) => o.kind === 'Namespace')!;
    expect(ns.metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});
