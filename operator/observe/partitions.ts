import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KafkaErrorCodes, kafkaErrorCode, type KafkaConnectionOptions } from '../../lib/kafka/client.js';
import type { ProcessingJob } from '../api/types.js';
import { Observer } from './observer.js';

export type PartitionInfo =
  | { state: 'known'; partitions: number }
  | { state: 'missing' }
  | { state: 'unreachable'; message: string }
  | { state: 'pending' };

export type PartitionCounter = (options: KafkaConnectionOptions, topic: string) => Promise<number>;

interface Entry {
  info: PartitionInfo;
  checkedAt: number;
  inFlight: boolean;
  jobs: Set<string>;
}

const decode = (secret: V1Secret | undefined, key: string): string | undefined => {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
};

/** How the operator itself reaches a job's brokers (it has no TLS files: system CAs only). */
export function connectionFor(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): KafkaConnectionOptions {
  const { kafka } = job.spec;
  const options: KafkaConnectionOptions = { brokers: kafka.bootstrapServers, clientId: 'sluice-operator', connectionTimeoutMs: 3_000 };
  if (kafka.tls?.enabled) options.tls = { enabled: true, insecureSkipVerify: kafka.tls.insecureSkipVerify };
  if (kafka.sasl) {
    const secret = secrets.get(kafka.sasl.secretName);
    options.sasl = {
      mechanism: kafka.sasl.mechanism,
      username: decode(secret, kafka.sasl.usernameKey) ?? '',
      password: decode(secret, kafka.sasl.passwordKey) ?? '',
    };
  }
  return options;
}

/**
 * Partition counts of topics, checked in the background: a reconcile never
 * waits on Kafka (an unreachable broker can take many seconds to time out). A
 * lookup answers from the cache, starts a check when the entry is absent or
 * older than the TTL, and the jobs that asked are requeued when the answer
 * changes.
 */
export class PartitionProbe extends Observer<Entry> {
  constructor(
    private readonly count: PartitionCounter,
    requeue: (jobKey: string) => void,
    log: Logger,
    private readonly ttlMs = 30_000,
    private readonly timeoutMs = 15_000,
  ) {
    super(requeue, log);
  }

  lookup(job: ProcessingJob, secrets: ReadonlyMap<string, V1Secret>): PartitionInfo {
    const options = connectionFor(job, secrets);
    const key = JSON.stringify([[...options.brokers].sort(), job.spec.kafka.topic, options.sasl?.username ?? '', options.tls?.enabled ?? false]);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { info: { state: 'pending' }, checkedAt: 0, inFlight: false, jobs: new Set() };
      this.entries.set(key, entry);
    }
    entry.jobs.add(`${job.metadata.namespace}/${job.metadata.name}`);
    if (!entry.inFlight && Date.now() - entry.checkedAt > this.ttlMs) void this.refresh(entry, options, job.spec.kafka.topic);
    return entry.info;
  }

  /** A job is gone: it is no longer requeued by the checks of its topic; a topic no job asks about is dropped. */
  forget(jobKey: string): void {
    for (const [key, entry] of this.entries) {
      entry.jobs.delete(jobKey);
      if (entry.jobs.size === 0 && !entry.inFlight) this.entries.delete(key);
    }
  }

  private async refresh(entry: Entry, options: KafkaConnectionOptions, topic: string): Promise<void> {
    entry.inFlight = true;
    let info: PartitionInfo;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer from ${options.brokers.join(',')} within ${this.timeoutMs / 1000}s`)), this.timeoutMs);
      });
      info = { state: 'known', partitions: await Promise.race([this.count(options, topic), timeout]) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      info = kafkaErrorCode(err) === KafkaErrorCodes.TOPIC_NOT_FOUND ? { state: 'missing' } : { state: 'unreachable', message };
      this.log.debug({ topic, err: message }, 'partition check failed');
    } finally {
      clearTimeout(timer);
    }
    const previous = entry.info;
    entry.info = info;
    entry.checkedAt = Date.now();
    entry.inFlight = false;
    this.requeueIfChanged(previous, info, entry.jobs);
  }
}
