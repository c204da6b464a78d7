import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { infra } from '../support/infra.js';
import { repoRoot } from '../support/infra.js';
import type { Cluster } from './cluster.js';

const run = promisify(execFile);

/**
 * Where the operator under test runs.
 * - in-cluster: the chart's own Deployment (a cluster that runs containers: kind, a real cluster).
 * - image: the chart's image and arguments, in `docker run --network host` on this machine: on the
 *   hack/ control plane KWOK makes the chart's operator Pods Ready, but no container runs in them.
 * - process: the same arguments, as `node bin/sluice.js operator`, when there is no Docker or no image.
 * SLUICE_E2E_OPERATOR forces one.
 */
export type OperatorMode = 'in-cluster' | 'image' | 'process';

export const e2eImage = process.env.SLUICE_E2E_IMAGE ?? 'sluice:dev';

export function dockerHost(): string | undefined {
  try {
    return infra().docker?.host;
  } catch {
    return undefined;
  }
}

async function imageAvailable(): Promise<boolean> {
  const host = dockerHost();
  if (!host) return false;
  try {
    await run('docker', ['image', 'inspect', e2eImage], { env: { ...process.env, DOCKER_HOST: host } });
    return true;
  } catch {
    return false;
  }
}

/**
 * The image under test, built from this checkout (`hack/build-image.sh`, mostly cached layers) so that a
 * stale image never tests old code. SLUICE_E2E_SKIP_BUILD=1 uses the image as it is.
 */
export async function buildImage(): Promise<void> {
  if (process.env.SLUICE_E2E_SKIP_BUILD === '1') return;
  await run('bash', [`${repoRoot}/hack/build-image.sh`, e2eImage], { env: { ...process.env, DOCKER_HOST: dockerHost() } });
}

export async function operatorMode(c: Cluster): Promise<OperatorMode> {
  const forced = process.env.SLUICE_E2E_OPERATOR;
  if (forced === 'in-cluster' || forced === 'image' || forced === 'process') return forced;
  if (forced) throw new Error(`SLUICE_E2E_OPERATOR must be in-cluster, image or process, got '${forced}'`);
  if (!c.isTestControlPlane) return 'in-cluster';
  return (await imageAvailable()) ? 'image' : 'process';
}

export interface RunningOperator {
  logs(): string;
  /** The exit code or signal once the operator has exited, else undefined. */
  exit(): string | undefined;
  stop(): Promise<void>;
}

/** Starts the operator outside the cluster with `args` (the chart's container args) and a kubeconfig. */
export function startOperator(mode: 'image' | 'process', args: string[], kubeconfig: string, name: string): RunningOperator {
  let child: ChildProcess;
  if (mode === 'image') {
    const mounted = '/var/run/sluice/kubeconfig';
    child = spawn(
      'docker',
      ['run', '--rm', '--name', name, '--network', 'host', '--read-only', '-v', `${kubeconfig}:${mounted}:ro`, e2eImage, ...args, `--kubeconfig=${mounted}`],
      { env: { ...process.env, DOCKER_HOST: dockerHost() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } else {
    child = spawn(process.execPath, [`${repoRoot}/bin/sluice.js`, ...args, `--kubeconfig=${kubeconfig}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    logs: () => text,
    exit: () => (child.exitCode !== null ? `code ${child.exitCode}` : (child.signalCode ?? undefined)),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (mode === 'image') {
        await run('docker', ['stop', '-t', '20', name], { env: { ...process.env, DOCKER_HOST: dockerHost() } }).catch(() => undefined);
      } else {
        child.kill('SIGTERM');
      }
      await exited;
    },
  };
}
