import { statSync } from 'node:fs';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Two files of the integration and real-pod tiers run at a time (most of their time is spent waiting on
 * Kafka rebalances, pod starts and outages, not on the CPU). The real-pod files never run beside each
 * other (they share the one real node and the image they load into it): the longest starts first, the
 * integration files fill the other lane around it, and the other real-pod files come last.
 */
export default class RealPodsApart extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isRealPods = (f: TestSpecification): boolean => f.project.name === 'e2e';
    const size = (f: TestSpecification): number => statSync(f.moduleId).size;
    const [longest, ...others] = sorted.filter(isRealPods).sort((a, b) => size(b) - size(a));
    return [...(longest ? [longest] : []), ...sorted.filter((f) => !isRealPods(f)), ...others];
  }
}
