import { resolve } from 'node:path';

// Both the sources (tsx) and the build (dist/operator/api) sit two levels below the repo root.
const here = import.meta.dirname;
const repoRoot = resolve(here, '..', '..', here.includes(`${'/'}dist${'/'}`) ? '..' : '.');

export const crdPath = resolve(repoRoot, 'crds', 'processingjobs.sluice.dev.yaml');
export const generatedTypesPath = resolve(repoRoot, 'operator', 'api', 'types.generated.ts');
export const snapshotCrdPath = resolve(repoRoot, 'crds', 'processingjobsnapshots.sluice.dev.yaml');
export const snapshotTypesPath = resolve(repoRoot, 'operator', 'api', 'snapshot-types.generated.ts');
