import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { infra, infraDir, repoRoot } from '../support/infra.js';
import type { Cluster } from './cluster.js';

const run = promisify(execFile);

/** The image under test: operator and workers (hack/e2e-kind.sh sets its own). */
export const e2eImage = process.env.SLUICE_E2E_IMAGE ?? 'sluice:dev';

/** registry:port/name:tag → name and tag (the tag is after the last ':' that follows the last '/'). */
export function imageParts(image = e2eImage): { repository: string; tag: string } {
  const at = image.lastIndexOf(':') > image.lastIndexOf('/') ? image.lastIndexOf(':') : -1;
  return at < 0 ? { repository: image, tag: 'latest' } : { repository: image.slice(0, at), tag: image.slice(at + 1) };
}

/**
 * On the hack/ control plane: builds the image from this checkout with
 * hack/build-image.sh (cached layers: seconds when nothing changed), so a stale
 * image never tests old code, and loads it into the real node's containerd, as
 * `kind load docker-image` does (no registry: nothing is ever pulled).
 * SLUICE_E2E_SKIP_BUILD=1 uses the image as it is. Elsewhere (hack/e2e-kind.sh)
 * the image is already on the nodes.
 */
export async function imageOnNodes(c: Cluster): Promise<void> {
  if (!c.isTestControlPlane) return;
  const env = { ...process.env, DOCKER_HOST: infra().docker?.host ?? process.env.DOCKER_HOST };
  // Real-pod files run side by side: one builds and loads while the other waits, then finds it cached.
  const lock = join(infraDir, 'e2e-image.lock');
  if (process.env.SLUICE_E2E_SKIP_BUILD !== '1') await run('flock', [lock, 'bash', `${repoRoot}/hack/build-image.sh`, e2eImage], { env });
  await run('flock', [lock, 'bash', `${repoRoot}/hack/node.sh`, 'load', e2eImage], { env });
}
