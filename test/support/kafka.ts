import { GroupConsumer, type ConsumedRecord, type KafkaConnectionOptions } from '../../lib/kafka/client.js';

/**
 * Reads `count` records from the start of a topic (all partitions) with a
 * throwaway consumer group, or fails after `timeoutMs` saying how many came.
 * For tests and tools that inspect a topic such as the dead-letter topic.
 */
export async function readRecords(
  connection: KafkaConnectionOptions,
  topic: string,
  count: number,
  timeoutMs: number,
): Promise<Array<ConsumedRecord & { partition: number }>> {
  const got: Array<ConsumedRecord & { partition: number }> = [];
  let done!: () => void;
  const enough = new Promise<void>((resolve) => (done = resolve));
  const consumer = await GroupConsumer.start(
    connection,
    { groupId: `sluice-reader-${process.pid}-${Date.now()}`, topic, startFrom: 'earliest', maxWaitTimeMs: 200 },
    {
      onAssignment: () => undefined,
      onRebalancing: () => undefined,
      onCrash: () => done(),
      onBatch: async (batch) => {
        for (const r of batch.records) got.push({ ...r, partition: batch.partition });
        batch.consumed();
        if (got.length >= count) done();
      },
    },
  );
  const timer = setTimeout(() => done(), timeoutMs);
  try {
    await enough;
  } finally {
    clearTimeout(timer);
    await consumer.stop();
  }
  if (got.length < count) throw new Error(`read ${got.length} of ${count} records from ${topic} within ${timeoutMs} ms`);
  return got;
}
