/**
 * The last words of a worker or task process, where Kubernetes shows them:
 * the container's termination message (`kubectl describe pod`, and the
 * operator reads it to say why a job is Degraded). The kubelet creates the
 * file; outside a pod it does not exist and nothing is written.
 */
import { existsSync, writeFileSync } from 'node:fs';

export const TERMINATION_LOG = '/dev/termination-log';
/** Kubernetes keeps at most 4096 bytes of a termination message. */
export const TERMINATION_MAX = 4096;

export function writeTerminationMessage(text: string, path = process.env.SLUICE_TERMINATION_LOG ?? TERMINATION_LOG): boolean {
  if (!existsSync(path)) return false;
  const body = Buffer.from(text);
  try {
    writeFileSync(path, body.length <= TERMINATION_MAX ? body : body.subarray(0, TERMINATION_MAX));
    return true;
  } catch {
    return false;
  }
}
