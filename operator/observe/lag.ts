import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KafkaConnectionOptions } from '../../lib/kafka/client.js';
import type { ProcessingJob } from '../api/types.js';
import { consumerGroup } from '../render/worker-config.js';
import { Observer } from './observer.js';
import { connectionFor } from './partitions.js';

/** What the operator last saw of a job's consumption. */
export interface Progress {
  /** End offsets minus the group's committed offsets, over the partitions with a commit. */
  consumerLag?: number;
  /** When the operator saw the committed offsets move (the workers commit after each checkpoint). */
  lastCheckpointTime?: string;
}

export interface OffsetReader {
  endOffsets(options: KafkaConnectionOptions, topic: string): Promise<Map<number, number>>;
  committedOffsets(options: KafkaConnectionOptions, group: string, topic: string): Promise<Map<number, number>>;
}

interface Entry {
  progress: Progress;
  committed?: string;
  job: ProcessingJob;
  options: KafkaConnectionOptions;
  lookedUpAt: number;
  timer?: NodeJS.Timeout;
}

/** Lag over the partitions whose group has committed; undefined when none has. */
export function lagOf(ends: ReadonlyMap<number, number>, committed: ReadonlyMap<number, number>): number | undefined {
  let lag: number | undefined;
  for (const [partition, end] of ends) {
    const at = committed.get(partition);
    if (at === undefined || at < 0) continue;
    lag = (lag ?? 0) + Math.max(0, end - at);
  }
  return lag;
}

/**
 * Consumer lag and last checkpoint of each job, read from Kafka in the
 * background every `periodMs` (so a status write at most that often, never on
 * every reconcile); the job is requeued when what it would show changes.
 */
export class LagProbe extends Observer<Entry> {
  constructor(
    private readonly reader: OffsetReader,
    requeue: (jobKey: string) => void,
    log: Logger,
    private readonly periodMs = 60_000,
  ) {
    super(requeue, log);
  }

  /** The last reading for the job; the first call starts reading it every period. */
  lookup(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): Progress {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    const options = connectionFor(job, secrets);
    const entry = this.entries.get(key);
    if (entry) {
      Object.assign(entry, { job, options, lookedUpAt: Date.now() });
      return entry.progress;
    }
    const fresh: Entry = { progress: {}, job, options, lookedUpAt: Date.now() };
    this.entries.set(key, fresh);
    // Spread the reads over the period: an operator starting with 500 jobs must not open 1000 Kafka connections at once.
    fresh.timer = setTimeout(() => void this.refresh(key, fresh), Math.random() * this.periodMs);
    fresh.timer.unref();
    return fresh.progress;
  }

  forget(jobKey: string): void {
    clearTimeout(this.entries.get(jobKey)?.timer);
    this.entries.delete(jobKey);
  }

  stop(): void {
    for (const key of [...this.entries.keys()]) this.forget(key);
  }

  private schedule(key: string, entry: Entry): void {
    // A job nobody reconciled for a long while is gone (or no longer ours): stop reading it.
    if (Date.now() - entry.lookedUpAt > Math.max(15 * 60_000, 3 * this.periodMs)) {
      this.entries.delete(key);
      return;
    }
    entry.timer = setTimeout(() => void this.refresh(key, entry), this.periodMs);
    entry.timer.unref();
  }

  private async refresh(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) !== entry) return;
    const { job, options } = entry;
    const topic = job.spec.kafka.topic;
    const group = consumerGroup(job);
    try {
      const [ends, committed] = await Promise.all([this.reader.endOffsets(options, topic), this.reader.committedOffsets(options, group, topic)]);
      const fingerprint = JSON.stringify([...committed].sort(([a], [b]) => a - b));
      const moved = entry.committed !== undefined && entry.committed !== fingerprint;
      const next: Progress = { consumerLag: lagOf(ends, committed), lastCheckpointTime: moved ? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') : entry.progress.lastCheckpointTime };
      entry.committed = fingerprint;
      const previous = entry.progress;
      entry.progress = next;
      this.requeueIfChanged(previous, next, [key]);
    } catch (err) {
      this.log.debug({ job: key, err: err instanceof Error ? err.message : String(err) }, 'lag check failed');
    } finally {
      this.schedule(key, entry);
    }
  }
}
