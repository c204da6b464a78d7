import { resolve } from 'node:path';
import { packageRoot } from '../../lib/package-root.js';

/** The CRDs (the API contract) and the types generated from them, in the package (sources, dist/ or the image). */
export const crdPath = resolve(packageRoot(), 'crds', 'processingjobs.sluice.dev.yaml');
export const generatedTypesPath = resolve(packageRoot(), 'operator', 'api', 'types.generated.ts');
export const snapshotCrdPath = resolve(packageRoot(), 'crds', 'processingjobsnapshots.sluice.dev.yaml');
export const snapshotTypesPath = resolve(packageRoot(), 'operator', 'api', 'snapshot-types.generated.ts');
