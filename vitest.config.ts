import { defineConfig } from 'vitest/config';
import RealPodsApart from './test/support/sequencer.js';

// Three tiers, one run: `npm test` runs all of them against the real Kafka,
// Redis, SMTP and Kubernetes started by `hack/infra.sh up` (the pretest step).
// The JSON report is what .ci/run counts.
const CLUSTER_LANES = 2;
const CLUSTER_WIDE = ['test/e2e/chart.test.ts', 'test/e2e/crd-upgrade.test.ts'];
// Measures workers' true rates and how fast a scaled job works off its lag: beside the other lane's load a
// worker capped at 100 events/s did 65/s, so it runs with the machine to itself.
const ALONE = ['test/e2e/autoscaling.test.ts'];

export default defineConfig({
  test: {
    sequence: { sequencer: RealPodsApart },
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
          // Each file uses its own topics, key prefixes and namespaces (and, on the real node, its own
          // namespace-scoped operator), so files may overlap; two at a time suit a 2-core machine.
          maxWorkers: CLUSTER_LANES,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          // Real pods on the real node, alongside the integration files (the same group, two lanes).
          sequence: { groupOrder: 1 },
          include: ['test/e2e/**/*.test.ts'],
          exclude: [...CLUSTER_WIDE, ...ALONE],
          testTimeout: 300_000,
          hookTimeout: 900_000,
          maxWorkers: CLUSTER_LANES,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e-cluster',
          // Last and alone: these install cluster-wide objects (an older CRD, ClusterRoles of chart copies)
          // that the other files must not see.
          sequence: { groupOrder: 2 },
          include: CLUSTER_WIDE,
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e-alone',
          sequence: { groupOrder: 3 },
          include: ALONE,
          testTimeout: 300_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
