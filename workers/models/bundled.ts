import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../lib/package-root.js';

/**
 * The trained models shipped with Sluice: `workers/models/bundled/<type>.onnx`
 * in the package (tsc does not copy them to dist/, so a container image copies
 * that directory too).
 */
export function bundledModelPath(type: string): string {
  const file = join(packageRoot(), 'workers', 'models', 'bundled', `${type}.onnx`);
  if (!existsSync(file)) throw new Error(`bundled ${type} model not found at ${file} (was workers/models/bundled/ copied with the package?)`);
  return file;
}
