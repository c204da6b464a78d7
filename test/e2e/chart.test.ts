import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/infra.js';
import { cluster } from './cluster.js';

const run = promisify(execFile);
const chart = join(repoRoot, 'charts', 'sluice');
const { helm } = cluster();

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

async function template(...set: string[]): Promise<K8sObject[]> {
  const { stdout } = await run(helm, ['template', 'sluice', chart, '--namespace', 'sluice-system', ...set.flatMap((s) => ['--set', s])]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

type Container = {
  args: string[];
  securityContext: Record<string, unknown>;
  resources: { requests: object; limits: object };
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
};

const operatorContainer = (objects: K8sObject[]): Container => {
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  return (deployment.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
};

describe('the Helm chart (no cluster needed)', () => {
  it('passes helm lint --strict', async () => {
    const { stdout } = await run(helm, ['lint', chart, '--strict']);
    expect(stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('ships the same CRDs as crds/ (cp crds/*.yaml charts/sluice/crds/ after changing them)', () => {
    const files = readdirSync(join(chart, 'crds'));
    expect(files).toEqual(['processingjobs.sluice.dev.yaml', 'processingjobsnapshots.sluice.dev.yaml']);
    for (const file of files) expect(readFileSync(join(chart, 'crds', file), 'utf8')).toBe(readFileSync(join(repoRoot, 'crds', file), 'utf8'));
  });

  it('defaults to a production-safe operator: 2 replicas, leader election, probes, limits, non-root, read-only, PDB', async () => {
    const objects = await template();
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    expect(deployment.spec!.replicas).toBe(2);
    const c = operatorContainer(objects);
    expect(c.args[0]).toBe('operator');
    expect(c.args).toContain('--leader-election-namespace=sluice-system');
    expect(c.args).not.toContain('--no-leader-elect');
    expect(c.args.some((a) => a.startsWith('--namespaces'))).toBe(false);
    expect(c.args).toContain('--worker-image=sluice:0.1.0');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits).toMatchObject({ memory: expect.any(String) });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const pod = (deployment.spec as { template: { spec: { securityContext: Record<string, unknown> } } }).template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(objects.find((o) => o.kind === 'PodDisruptionBudget')?.spec).toMatchObject({ minAvailable: 1 });
    expect(objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).toEqual(['sluice-metrics']);
  });

  it('grants cluster-wide least privilege by default: no wildcards, no deletes but of snapshots it retires, Secrets by name only', async () => {
    const objects = await template();
    const role = objects.find((o) => o.kind === 'ClusterRole')!;
    expect(objects.filter((o) => o.kind === 'Role').map((o) => o.metadata.name)).toEqual(['sluice-leader-election']);
    for (const rule of role.rules!) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      if (!rule.resources.includes('processingjobsnapshots')) expect(rule.verbs).not.toContain('delete');
    }
    const secrets = role.rules!.find((r) => r.resources.includes('secrets'))!;
    expect(secrets.verbs).toEqual(['get']);
    const leases = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'sluice-leader-election')!;
    expect(leases.metadata.namespace).toBe('sluice-system');
    expect(leases.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
  });

  it('switches to a Role per namespace when watchNamespaces lists some', async () => {
    const objects = await template('watchNamespaces={shop,staging}');
    expect(objects.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toBe(false);
    const roles = objects.filter((o) => o.kind === 'Role' && o.metadata.name === 'sluice');
    expect(roles.map((r) => r.metadata.namespace)).toEqual(['shop', 'staging']);
    expect(objects.filter((o) => o.kind === 'RoleBinding').length).toBe(3);
    expect(operatorContainer(objects).args).toContain('--namespaces=shop,staging');
  });

  it('renders ServiceMonitors for the operator and the workers, and the Grafana dashboard ConfigMap, when asked', async () => {
    const objects = await template('serviceMonitor.enabled=true', 'dashboards.enabled=true');
    expect(objects.filter((o) => o.kind === 'ServiceMonitor').map((o) => o.metadata.name)).toEqual(['sluice', 'sluice-workers']);
    const dashboards = objects.filter((o) => o.kind === 'ConfigMap') as (K8sObject & { data: Record<string, string> })[];
    expect(dashboards).toHaveLength(1);
    expect(JSON.parse(dashboards[0]!.data['sluice-overview.json']!).uid).toBe('sluice-overview');
  });

  it('refuses values that cannot work, naming the field', async () => {
    const refused = async (...set: string[]): Promise<string> => {
      try {
        await template(...set);
      } catch (err) {
        return (err as { stderr: string }).stderr;
      }
      throw new Error(`helm template accepted ${set.join(' ')}`);
    };
    expect(await refused('operator.replicas=2', 'operator.leaderElection.enabled=false')).toContain('/operator/leaderElection/enabled');
    expect(await refused('operator.logLevel=loud')).toContain('/operator/logLevel');
    expect(await refused('watchNamespaces={Not_A_Namespace}')).toContain('/watchNamespaces/0');
    expect(await refused('operator.replicaz=3')).toMatch(/additional properties 'replicaz' not allowed/);
  });

  it('charts only metrics the operator and workers export (the dashboard cannot drift from the code)', () => {
    const dashboard = readFileSync(join(chart, 'dashboards', 'sluice-overview.json'), 'utf8');
    const used = new Set([...dashboard.matchAll(/\b(sluice_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')));
    // The runtime's metrics and each job type's own (cart: sluice_alerts_total in workers/jobs/cart/).
    const jobFiles = readdirSync(join(repoRoot, 'workers', 'jobs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const source = ['operator/metrics.ts', 'workers/runtime/metrics.ts', ...jobFiles.map((f) => join('workers', 'jobs', f))].map((f) => readFileSync(join(repoRoot, f), 'utf8')).join('\n');
    const exported = new Set([...source.matchAll(/name: '(sluice_[a-z_]+)'/g)].map((m) => m[1]!));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });
});
