import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { infra, repoRoot } from '../support/infra.js';

const run = promisify(execFile);

/**
 * The cluster under test: whatever KUBECONFIG names, else the control plane of
 * `hack/infra.sh up kube`. Tools: $KUBECTL / $HELM, else the ones hack/ built,
 * else PATH.
 */
export interface Cluster {
  kubeconfig: string;
  kubectl: string;
  helm: string;
  /** The control plane from hack/ (KWOK nodes: pods are Ready, but no container runs). */
  isTestControlPlane: boolean;
}

export function cluster(): Cluster {
  const state = existsSync(join(repoRoot, '.infra', 'env.json')) ? infra() : {};
  const kube = state.kube as (typeof state.kube & { kubectl?: string; helm?: string }) | undefined;
  const kubeconfig = process.env.KUBECONFIG ?? kube?.kubeconfig;
  if (!kubeconfig) throw new Error("no cluster: set KUBECONFIG or run 'bash hack/infra.sh up kube'");
  return {
    kubeconfig,
    kubectl: process.env.KUBECTL ?? kube?.kubectl ?? 'kubectl',
    helm: process.env.HELM ?? kube?.helm ?? 'helm',
    isTestControlPlane: kube?.kubeconfig === kubeconfig,
  };
}

async function tool(bin: string, c: Cluster, args: string[], input?: string): Promise<string> {
  const env = { ...process.env, KUBECONFIG: c.kubeconfig };
  try {
    if (input === undefined) return (await run(bin, args, { env, maxBuffer: 16 << 20 })).stdout;
    return await new Promise((resolve, reject) => {
      const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
      child.stdin.end(input);
    });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${bin.split('/').pop()} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

export const kubectl = (c: Cluster, ...args: string[]): Promise<string> => tool(c.kubectl, c, args);
export const kubectlApply = (c: Cluster, namespace: string, manifest: string): Promise<string> =>
  tool(c.kubectl, c, ['apply', '-n', namespace, '-f', '-'], manifest);
export const helm = (c: Cluster, ...args: string[]): Promise<string> => tool(c.helm, c, args);

/**
 * A kubeconfig that authenticates as a ServiceAccount (a short-lived token from
 * the TokenRequest API): an operator started with it has exactly the chart's
 * RBAC, not the test's cluster-admin rights.
 */
export async function serviceAccountKubeconfig(c: Cluster, namespace: string, serviceAccount: string): Promise<string> {
  const token = (await kubectl(c, 'create', 'token', serviceAccount, '-n', namespace, '--duration', '2h')).trim();
  const admin = parse(await kubectl(c, 'config', 'view', '--raw', '--minify')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-e2e-')), 'kubeconfig');
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: admin.clusters[0]!.cluster }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'e2e', context: { cluster: 'e2e', user: serviceAccount, namespace } }],
      'current-context': 'e2e',
    }),
    { mode: 0o644 },
  );
  return file;
}

export type { ChildProcess };
