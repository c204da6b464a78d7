import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultedJob, minimalSpec } from '../api/sample.js';
import { LagProbe, lagOf, type OffsetReader } from './lag.js';

describe('consumer lag', () => {
  it('sums end minus committed over the partitions the group has committed', () => {
    const ends = new Map([[0, 100], [1, 50], [2, 7]]);
    expect(lagOf(ends, new Map([[0, 90], [1, 50], [2, -1]]))).toBe(10);
    expect(lagOf(ends, new Map())).toBeUndefined();
  });

  it('reads Kafka in the background, requeues the job when the answer changes, and dates a moved commit', async () => {
    let committed = new Map([[0, 10]]);
    const reader: OffsetReader = { endOffsets: async () => new Map([[0, 25]]), committedOffsets: async () => committed };
    const requeued: string[] = [];
    const probe = new LagProbe(reader, (k) => requeued.push(k), pino({ level: 'silent' }), 5);
    const job = defaultedJob('churn', 'shop', minimalSpec());
    expect(probe.lookup(job, new Map())).toEqual({});
    await new Promise((r) => setTimeout(r, 10));
    expect(probe.lookup(job, new Map())).toEqual({ consumerLag: 15 });
    expect(requeued).toEqual(['shop/churn']);
    committed = new Map([[0, 20]]);
    await new Promise((r) => setTimeout(r, 30));
    const seen = probe.lookup(job, new Map());
    probe.stop();
    expect(seen.consumerLag).toBe(5);
    expect(seen.lastCheckpointTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('stops reading Kafka for a job once it is forgotten (deleted)', async () => {
    let reads = 0;
    const reader: OffsetReader = {
      endOffsets: async () => {
        reads += 1;
        return new Map([[0, 25]]);
      },
      committedOffsets: async () => new Map([[0, 10]]),
    };
    const probe = new LagProbe(reader, () => undefined, pino({ level: 'silent' }), 5);
    probe.lookup(defaultedJob('gone', 'shop', minimalSpec()), new Map());
    await new Promise((r) => setTimeout(r, 30));
    expect(reads).toBeGreaterThan(0);
    probe.forget('shop/gone');
    const after = reads;
    await new Promise((r) => setTimeout(r, 40));
    expect(reads).toBe(after);
  });
});
