import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubectl, type Cluster } from './cluster.js';

/** Thrown by a probe of `waitUntil` when waiting longer cannot help (a failed task will not succeed later). */
export class FinalError extends Error {}

/** Polls `probe` until it returns a value; its errors are retried (and the last one told on timeout) unless final. */
export async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, everyMs = 1_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof FinalError) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface EvidenceScope {
  /** Where the files go (under .infra/logs/, which outlives the namespaces the file deletes). */
  dir: string;
  jobNamespace: string;
  /** Every namespace whose pods' logs are kept (the job's and the operator's). */
  namespaces: string[];
  /** What `kubectl get -o wide` lists, and what is kept as YAML. */
  kinds: string;
  yamlKinds: string;
}

/** After a failed step: the cluster's side of the story (objects, events, every pod's log, the previous one too). */
export async function keepEvidence(c: Cluster, scope: EvidenceScope, step: string): Promise<void> {
  mkdirSync(scope.dir, { recursive: true });
  const save = async (file: string, ...args: string[]): Promise<void> => {
    writeFileSync(join(scope.dir, file), await kubectl(c, ...args).catch((e: Error) => e.message));
  };
  const ns = scope.jobNamespace;
  await save(`${step}.objects.txt`, 'get', scope.kinds, '-n', ns, '-o', 'wide');
  await save(`${step}.resources.yaml`, 'get', scope.yamlKinds, '-n', ns, '-o', 'yaml');
  await save(`${step}.events.txt`, 'get', 'events', '-n', ns, '--sort-by=.lastTimestamp');
  for (const namespace of scope.namespaces) {
    const names = (await kubectl(c, 'get', 'pods', '-n', namespace, '-o', 'jsonpath={.items[*].metadata.name}').catch(() => '')).trim().split(/\s+/).filter(Boolean);
    for (const pod of names) {
      await save(`${step}.${pod}.log`, 'logs', pod, '-n', namespace, '--all-containers');
      await save(`${step}.${pod}.previous.log`, 'logs', pod, '-n', namespace, '--all-containers', '--previous');
    }
  }
  process.stderr.write(`e2e: what the cluster showed when "${step}" failed is in ${scope.dir}\n`);
}
