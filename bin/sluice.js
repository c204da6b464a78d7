#!/usr/bin/env node
// The published entry point runs the compiled CLI (built by `npm install`'s prepare step).
try {
  await import('../dist/cli/main.js');
} catch (err) {
  // Only a missing build gets this hint; any other error is the CLI's own and is rethrown.
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write("error: sluice is not built: run 'npm run build' (npm install does it too)\n");
    process.exit(1);
  }
  throw err;
}
