import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root, found by walking up from this module: the same code runs
 * from source (tsx, vitest: cli/) and compiled (dist/cli/), and inside the
 * container image, so a fixed number of `..` would be wrong in one of them.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'sluice.js'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the sluice package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The CLI entry point that local worker processes are started with. */
export function sluiceBin(): string {
  return join(packageRoot(), 'bin', 'sluice.js');
}
