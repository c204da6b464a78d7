import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Addresses of the real components started by `hack/infra.sh up`, read from the
 * env file that script writes. A test that needs a component that is not up
 * fails with the command that starts it: it never skips and never mocks.
 */
export interface Infra {
  /** podBrokers: the listener on the pod bridge, for the real node's pods (when hack/podnet.sh was up at the broker's start). */
  kafka?: { brokers: string[]; podBrokers?: string[] };
  redis?: { host: string; port: number };
  smtp?: { host: string; port: number; maildir: string };
  kube?: { kubeconfig: string; server: string; kubectl: string; helm: string; kind: string; binDir: string };
  docker?: { host: string; baseImage: string };
  chromium?: { executablePath: string };
  /** How the real node's pods reach the host's Redis and SMTP server (hack/podnet.sh). */
  podnet?: { bridge: string; subnet: string; gateway: string; redis: { host: string; port: number }; smtp: { host: string; port: number }; apiServer: string };
  /** The real node (hack/node.sh): what a pod spec needs to land there, and its containerd. */
  node?: { name: string; nodeSelector: Record<string, string>; tolerations: Array<Record<string, string>>; containerd: string; podSubnet: string };
}

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const infraDir = process.env.SLUICE_INFRA_DIR ?? join(repoRoot, '.infra');

export function infra(): Infra {
  const file = join(infraDir, 'env.json');
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Infra;
  } catch (err) {
    throw new Error(`no infrastructure state at ${file}: run 'bash hack/infra.sh up' first (${String(err)})`);
  }
}

function need<K extends keyof Infra>(key: K): NonNullable<Infra[K]> {
  const value = infra()[key];
  if (!value) throw new Error(`${key} is not up: run 'bash hack/infra.sh up ${key}' (see .infra/logs/${key}.log)`);
  return value as NonNullable<Infra[K]>;
}

export const kafka = (): NonNullable<Infra['kafka']> => need('kafka');
export const redis = (): NonNullable<Infra['redis']> => need('redis');
export const smtp = (): NonNullable<Infra['smtp']> => need('smtp');
export const kube = (): NonNullable<Infra['kube']> => need('kube');
export const docker = (): NonNullable<Infra['docker']> => need('docker');
export const chromium = (): NonNullable<Infra['chromium']> => need('chromium');
export const podnet = (): NonNullable<Infra['podnet']> => need('podnet');
export const node = (): NonNullable<Infra['node']> => need('node');

/** The raw RFC 5322 messages the test SMTP server has received, oldest first. */
export function receivedMails(): string[] {
  const dir = smtp().maildir;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

/** A name unique to this run, for topics, key prefixes and namespaces. */
export function uniqueName(base: string): string {
  return `${base}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
