import { resolve } from 'node:path';
import { packageRoot } from '../../lib/package-root.js';

/** The CRD (the API contract) and the types generated from it, in the package (sources, dist/ or the image). */
export const crdPath = resolve(packageRoot(), 'crds', 'processingjobs.sluice.dev.yaml');
export const generatedTypesPath = resolve(packageRoot(), 'operator', 'api', 'types.generated.ts');
