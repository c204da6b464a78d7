import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Two files of the integration and real-pod tiers run at a time (most of their time is spent waiting on
 * Kafka rebalances, pod starts and outages, not on the CPU). The real-pod files are the longest, so they
 * start first: the shorter files fill the other lane around them.
 */
export default class RealPodsFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isRealPods = (f: TestSpecification): boolean => f.project.name === 'e2e';
    return [...sorted.filter(isRealPods), ...sorted.filter((f) => !isRealPods(f))];
  }
}
