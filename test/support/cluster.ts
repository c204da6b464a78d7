/**
 * Helpers for the operator's integration tests and benchmark, against a real
 * API server (hack/infra.sh up kube). Nothing here is a test double.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { ApiextensionsV1Api, AppsV1Api, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, PatchStrategy, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { crdPath, snapshotCrdPath } from '../../operator/api/paths.js';
import { GROUP, PLURAL, VERSION, type ProcessingJob } from '../../operator/api/types.js';
import type { SpecInput } from '../../operator/api/sample.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, '..', '..');

export class TestCluster {
  readonly kc = new KubeConfig();
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly objects: KubernetesObjectApi;

  constructor(
    readonly kubeconfig: string,
    readonly kubectlPath: string,
  ) {
    this.kc.loadFromFile(kubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.apps = this.kc.makeApiClient(AppsV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    this.coordination = this.kc.makeApiClient(CoordinationV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(this.kc);
  }

  /** Installs (or updates) the CRD and waits until it is served. */
  /** Installs (or updates) the CRDs (ProcessingJob, ProcessingJobSnapshot) and waits until they are served. */
  async installCrd(): Promise<void> {
    const files = [crdPath, snapshotCrdPath];
    // Not through client-node: its typed serializer drops x-kubernetes-* schema fields (CEL rules) and defaults.
    await this.kubectl('apply', '--server-side', '--force-conflicts', '--field-manager=sluice-tests', ...files.flatMap((f) => ['-f', f]));
    const ext = this.kc.makeApiClient(ApiextensionsV1Api);
    for (const file of files) {
      const crd = parse(readFileSync(file, 'utf8')) as V1CustomResourceDefinition;
      await waitFor(`CRD ${crd.metadata!.name!} established`, 30_000, async () => {
        const got = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      });
    }
  }

  async createNamespace(name: string): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name } } });
  }

  async deleteNamespace(name: string): Promise<void> {
    await this.core.deleteNamespace({ name }).catch(() => undefined);
  }

  /** Creates a ProcessingJob as a user would (server-side apply, manager 'kubectl-test'); returns the server's answer. */
  async applyJob(namespace: string, name: string, spec: Partial<SpecInput> | Record<string, unknown>, annotations?: Record<string, string>): Promise<ProcessingJob> {
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: 'ProcessingJob', metadata: { name, namespace, ...(annotations ? { annotations } : {}) }, spec };
    return this.objects.patch(body, undefined, undefined, 'kubectl-test', true, PatchStrategy.ServerSideApply) as unknown as Promise<ProcessingJob>;
  }

  /** A merge patch of a job (spec or metadata), as `kubectl patch --type merge` does. */
  async patchJob(namespace: string, name: string, patch: Record<string, unknown>): Promise<ProcessingJob> {
    const { metadata, ...rest } = patch as { metadata?: Record<string, unknown> };
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: 'ProcessingJob', metadata: { ...metadata, name, namespace }, ...rest };
    return this.objects.patch(body, undefined, undefined, 'kubectl-test', undefined, PatchStrategy.MergePatch) as unknown as Promise<ProcessingJob>;
  }

  async getJob(namespace: string, name: string): Promise<ProcessingJob | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name })) as ProcessingJob;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  async deleteJob(namespace: string, name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
  }

  async kubectl(...args: string[]): Promise<string> {
    const { stdout } = await run(this.kubectlPath, ['--kubeconfig', this.kubeconfig, ...args], { timeout: 60_000 });
    return stdout;
  }

  async events(namespace: string, job: string): Promise<{ reason: string; message: string; type: string }[]> {
    const list = await this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${job},involvedObject.kind=ProcessingJob` });
    return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '', type: e.type ?? '' }));
  }
}

export { waitFor } from './wait.js';

export interface OperatorProcess {
  child: ChildProcess;
  logFile: string;
  /** SIGKILL: no graceful shutdown, no lease release. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  log(): string;
}

/**
 * Runs the operator as its own process, stopped by pid: from the sources through
 * tsx (no build needed), or from dist/ (`npm run build`) where memory is measured.
 */
export function spawnOperator(kubeconfig: string, args: string[], logFile: string, from: 'sources' | 'dist' = 'sources'): OperatorProcess {
  const out = createWriteStream(logFile, { flags: 'a' });
  const entry = from === 'dist' ? [resolve(repoRoot, 'dist/operator/bin.js')] : ['--import', 'tsx', resolve(repoRoot, 'operator/bin.ts')];
  const child = spawn(process.execPath, [...entry, '--kubeconfig', kubeconfig, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
