import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { JobType } from '../../lib/worker-config/config.js';

/**
 * The trained models shipped with Sluice live beside this module's source, in
 * workers/models/bundled/. From source (tsx, vitest) that is this directory;
 * compiled, this module runs from dist/workers/models/ and the .onnx files
 * stay in the package's workers/models/bundled/ (tsc does not copy them), so
 * a container image must copy that directory too.
 */
export function bundledModelPath(type: 'churn' | 'cart'): string {
  const file = `${type satisfies JobType}.onnx`;
  const here = import.meta.dirname;
  const candidates = [join(here, 'bundled', file), resolve(here, '..', '..', '..', 'workers', 'models', 'bundled', file)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`bundled ${type} model not found; looked in ${candidates.join(' and ')} (was workers/models/bundled/ copied with the package?)`);
  return found;
}
