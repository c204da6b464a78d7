import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { docker } from '../support/infra.js';

// Proves hack/docker.sh started a real Docker engine and made a base image
// locally (no registry is reachable here): a container runs from it.
describe('docker engine from hack/docker.sh', () => {
  const run = (...args: string[]): string =>
    execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: docker().host } });

  it('runs a container from the local Debian base image', () => {
    const out = run('run', '--rm', '--network', 'none', '--read-only', docker().baseImage, 'sh', '-c', 'cat /etc/os-release; id -u');
    expect(out).toMatch(/VERSION_CODENAME=bookworm/);
    expect(out.trim().split('\n').at(-1)).toBe('0');
  });
});
