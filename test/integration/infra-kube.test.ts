import * as k8s from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kube, uniqueName } from '../support/infra.js';

// Proves hack/kube.sh started a real control plane: the API server accepts a
// CRD and serves its resources, the controller-manager turns a Deployment into
// Pods and binds a PVC, the scheduler places the Pods and KWOK makes them Ready.
describe('kubernetes control plane from hack/kube.sh', () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube().kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const namespace = uniqueName('infra-kube');
  const group = `${namespace}.smoke.sluice.dev`;
  const crdName = `widgets.${group}`;

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  afterAll(async () => {
    await ext.deleteCustomResourceDefinition({ name: crdName }).catch(() => {});
    await core.deleteNamespace({ name: namespace }).catch(() => {});
  });

  it('installs a CRD and serves its custom resources', async () => {
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: crdName },
        spec: {
          group,
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget' },
          scope: 'Namespaced',
          versions: [{
            name: 'v1', served: true, storage: true,
            schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } } } } },
          }],
        },
      },
    });
    await waitFor(async () => {
      const crd = await ext.readCustomResourceDefinition({ name: crdName });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
    }, 'CRD established');
    await custom.createNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets', body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size: 3 } } });
    const got = (await custom.getNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets', name: 'w' })) as { spec: { size: number } };
    expect(got.spec.size).toBe(3);
    // The schema is enforced at admission: size must be >= 1.
    await expect(custom.createNamespacedCustomObject({ group, version: 'v1', namespace, plural: 'widgets', body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'bad' }, spec: { size: 0 } } }))
      .rejects.toThrow(/spec.size/);
  });

  it('runs a Deployment with a PVC to Ready Pods on KWOK nodes', async () => {
    await core.createNamespacedPersistentVolumeClaim({ namespace, body: {
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } } },
    } });
    await apps.createNamespacedDeployment({ namespace, body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            containers: [{ name: 'web', image: 'example.invalid/web:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
            volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
          },
        },
      },
    } });
    await waitFor(async () => (await apps.readNamespacedDeployment({ namespace, name: 'web' })).status?.readyReplicas === 2, 'Deployment ready');
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.spec?.nodeName).toMatch(/^kwok-node-/);
      expect(pod.status?.phase).toBe('Running');
    }
    // The PV controller binds the claim (spec.volumeName) before it writes the
    // phase, and the scheduler needs only the former: wait for the phase too.
    await waitFor(async () => (await core.readNamespacedPersistentVolumeClaim({ namespace, name: 'data' })).status?.phase === 'Bound', 'PVC bound');
    const pvc = await core.readNamespacedPersistentVolumeClaim({ namespace, name: 'data' });
    expect(pvc.spec?.volumeName).toMatch(/^pvc-/);
    expect(pvc.spec?.storageClassName).toBe('standard');
  });

  it('garbage-collects the ReplicaSet and Pods of a deleted Deployment', async () => {
    await apps.deleteNamespacedDeployment({ namespace, name: 'web', propagationPolicy: 'Background' });
    await waitFor(async () => (await core.listNamespacedPod({ namespace, labelSelector: 'app=web' })).items.length === 0, 'Pods collected');
    expect((await apps.listNamespacedReplicaSet({ namespace })).items).toHaveLength(0);
  });

  it('serves kubectl and helm built from the Go module proxy', () => {
    const kubectl = execFileSync(kube().kubectl, ['--kubeconfig', kube().kubeconfig, 'get', 'nodes', '-o', 'name'], { encoding: 'utf8' });
    expect(kubectl.trim().split('\n')).toEqual(expect.arrayContaining(['node/kwok-node-0', 'node/kwok-node-1']));
    expect(execFileSync(kube().helm, ['version', '--short'], { encoding: 'utf8' })).toMatch(/^v3\.\d+/);
    expect(execFileSync(kube().kind, ['version'], { encoding: 'utf8' })).toMatch(/^kind v0\.\d+/);
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
