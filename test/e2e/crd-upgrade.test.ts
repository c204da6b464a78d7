import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { repoRoot, uniqueName } from '../support/infra.js';
import { cluster, helm, kubectl } from './cluster.js';

/**
 * Helm installs crds/ once and never upgrades it. The documented way to
 * upgrade the CRD with the chart is
 *   kubectl apply --server-side --force-conflicts -f charts/sluice/crds/
 * before `helm upgrade`. This test plays an upgrade from an older CRD (one
 * without spec.restartNonce) on the real API server. The CRD's group is
 * renamed for the test so that the shared processingjobs.sluice.dev, which
 * other tests use at the same time, is never touched.
 */
const c = cluster();
const id = uniqueName('crdup');
const group = `${id}.sluice.dev`;
const crdName = `processingjobs.${group}`;
const release = uniqueName('crd');
const namespace = uniqueName('e2e-crd');
const work = mkdtempSync(join(tmpdir(), 'sluice-crd-upgrade-'));

type Crd = {
  metadata: { name: string };
  spec: { group: string; names: { shortNames?: string[]; categories?: string[] }; versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] };
};

/** The chart as shipped, with its CRD under the test's own group; `old` drops spec.restartNonce. */
function chartCopy(dir: string, old: boolean): string {
  const chart = join(work, dir);
  cpSync(join(repoRoot, 'charts', 'sluice'), chart, { recursive: true });
  // Only the renamed ProcessingJob CRD: the real snapshot CRD belongs to the other tests.
  rmSync(join(chart, 'crds', 'processingjobsnapshots.sluice.dev.yaml'), { force: true });
  const file = join(chart, 'crds', 'processingjobs.sluice.dev.yaml');
  const crd = parse(readFileSync(file, 'utf8')) as Crd;
  crd.metadata.name = crdName;
  crd.spec.group = group;
  // The copy must not answer to `kubectl get pj` while it exists.
  delete crd.spec.names.shortNames;
  delete crd.spec.names.categories;
  const specProps = crd.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties;
  expect(specProps.restartNonce).toBeDefined();
  if (old) delete specProps.restartNonce;
  writeFileSync(file, stringify(crd));
  return chart;
}

const hasRestartNonce = async (): Promise<boolean> =>
  (await kubectl(c, 'get', 'crd', crdName, '-o', 'jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.restartNonce.type}')).trim() === 'string';

describe('upgrading the CRD together with the chart', () => {
  afterAll(async () => {
    await helm(c, 'uninstall', release, '-n', namespace).catch(() => undefined);
    await kubectl(c, 'delete', 'crd', crdName, '--ignore-not-found').catch(() => undefined);
    await kubectl(c, 'delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('helm upgrade alone leaves the old CRD; kubectl apply --server-side --force-conflicts of crds/ upgrades it', async () => {
    const values = ['--set', 'operator.enabled=false', '--set', 'rbac.create=false', '--set', 'serviceAccount.create=false', '--set', 'serviceAccount.name=default'];
    await helm(c, 'install', release, chartCopy('old', true), '-n', namespace, '--create-namespace', ...values);
    expect(await hasRestartNonce()).toBe(false);

    const next = chartCopy('new', false);
    await helm(c, 'upgrade', release, next, '-n', namespace, ...values);
    expect(await hasRestartNonce()).toBe(false); // the known Helm limitation

    const out = await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(next, 'crds'));
    expect(out).toContain(`customresourcedefinition.apiextensions.k8s.io/${crdName} serverside-applied`);
    expect(await hasRestartNonce()).toBe(true);
    // Applying it again is a no-op: safe to run before every helm upgrade.
    await kubectl(c, 'apply', '--server-side', '--force-conflicts', '-f', join(next, 'crds'));
    expect(await hasRestartNonce()).toBe(true);
  });
});
