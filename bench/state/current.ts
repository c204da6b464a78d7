/** The current state for the state benchmark: the jobs' compact tables and incremental checkpoints. */
import { CartJob } from '../../workers/jobs/cart/job.js';
import { ChurnJob } from '../../workers/jobs/churn/job.js';
import type { PartitionState, StreamJob } from '../../workers/runtime/job.js';
import { DEFAULT_POLICY, IoGate, PartitionCheckpoints } from '../../workers/state/checkpoints.js';
import type { StateStore } from '../../workers/state/table.js';
import type { BackendOptions, BackendUnderTest, CheckpointResult } from './backend.js';

/** Cached records of the disk backend, per partition. */
const CACHE_MIB = Number(process.env.SLUICE_BENCH_CACHE_MIB ?? 64);

export async function currentBackend(name: string, o: BackendOptions): Promise<BackendUnderTest> {
  if (name !== 'memory' && name !== 'disk') throw new Error(`unknown backend '${name}' (memory, disk)`);
  const store: StateStore = name === 'disk' ? { backend: 'disk', dir: o.localDir, cacheMiB: CACHE_MIB } : { backend: 'memory' };
  const job: StreamJob<PartitionState> = o.job === 'churn' ? new ChurnJob(o.model, undefined, store) : new CartJob(o.model, { abandonWindowMinutes: 60, abandonThreshold: 0.75 }, store);
  const format = job.stateFormat;
  const gate = new IoGate();
  const logs = Array.from({ length: o.partitions }, (_, p) => new PartitionCheckpoints(o.checkpointDir, { jobType: job.type, topic: 'events', partition: p, format }, DEFAULT_POLICY, gate));
  let states = Array.from({ length: o.partitions }, () => job.newState());
  return {
    label: name === 'disk' ? `compact, disk (record file, ${CACHE_MIB} MiB cache per partition)` : 'compact, memory',
    async process(p, events) {
      await job.process(states[p], events);
    },
    async checkpoint(p, nextOffset, full): Promise<CheckpointResult> {
      // One checkpoint per partition at a time: a later one waits for the one in flight.
      for (;;) {
        const started = logs[p].begin(states[p].table, job.meta(states[p]), nextOffset, full);
        if (started) {
          const r = await started;
          return { bytes: r?.bytes ?? 0, kind: r?.kind === 'base' ? 'full' : 'incremental' };
        }
        await logs[p].settled();
      }
    },
    async restore() {
      for (const s of states) await s.table.dispose();
      states = logs.map((log) => {
        const r = log.load(() => job.newTable());
        return r ? job.restored(r.table, r.meta) : job.newState();
      });
    },
    users: () => states.reduce((n, s) => n + s.table.size, 0),
    localDiskBytes: () => states.reduce((n, s) => n + s.table.diskBytes, 0),
    async close() {
      for (const s of states) await s.table.dispose();
    },
  };
}
