import { defineConfig } from 'vitest/config';

// Three tiers, one run: `npm test` runs all of them against the real Kafka,
// Redis, SMTP and Kubernetes started by `hack/infra.sh up` (the pretest step).
// The JSON report is what .ci/run counts.
export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['lib/**/*.test.ts', 'test/contract/**/*.test.ts', 'operator/**/*.test.ts', 'workers/**/*.test.ts', 'cli/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Each file uses its own topics, key prefixes and namespaces, but the
          // machine has two cores: run files one at a time so timings stay sane.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // After integration: the e2e chart tests install cluster-scoped objects
          // (CRD copies, ClusterRoles) that must not overlap the operator tests.
          sequence: { groupOrder: 2 },
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
