/** Malformed records go to the dead-letter topic with their reason and origin. */
import type { ConsumedRecord, OutgoingRecord } from '../../lib/kafka/client.js';

export const DLQ_HEADERS = {
  reason: 'sluice-dlq-reason',
  topic: 'sluice-source-topic',
  partition: 'sluice-source-partition',
  offset: 'sluice-source-offset',
  job: 'sluice-job',
} as const;

/** The dead letter of record `r` of `topic`/`partition`: the original key, value and headers, plus where it came from and why. */
export function deadLetter(job: string, topic: string, partition: number, r: ConsumedRecord, reason: string): OutgoingRecord {
  return {
    // Keyed by origin, so a consumer of the DLQ can drop the duplicates a replay may add.
    key: `${topic}/${partition}/${r.offset}`,
    value: r.value,
    headers: {
      ...r.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.topic]: topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: String(r.offset),
      [DLQ_HEADERS.job]: job,
    },
  };
}
