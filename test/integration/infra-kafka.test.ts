import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { kafka, uniqueName } from '../support/infra.js';

// Proves hack/kafka.sh started a real broker: kafkajs creates a topic, produces
// keyed messages and reads them back through a consumer group, the way workers do.
describe('kafka from hack/kafka.sh', () => {
  const client = new Kafka({ clientId: 'infra-kafka-test', brokers: kafka().brokers, logLevel: logLevel.WARN });
  const admin = client.admin();
  const topic = uniqueName('infra-kafka');
  const consumers: Consumer[] = [];

  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.disconnect()));
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('creates a topic with the requested partitions', async () => {
    await admin.connect();
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })).toBe(true);
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(meta.topics[0]?.partitions).toHaveLength(3);
  });

  it('delivers produced messages to a consumer group, in order per key', async () => {
    const producer = client.producer();
    await producer.connect();
    const sent = Array.from({ length: 30 }, (_, i) => ({ key: `user-${i % 5}`, value: JSON.stringify({ seq: i }) }));
    await producer.send({ topic, messages: sent });
    await producer.disconnect();

    const consumer = client.consumer({ groupId: uniqueName('infra-kafka-group') });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: { key: string; seq: number; partition: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length}/30 messages consumed`)), 60_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const { seq } = JSON.parse(message.value!.toString()) as { seq: number };
            received.push({ key: message.key!.toString(), seq, partition });
            if (received.length === sent.length) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });

    expect(received.map((m) => m.seq).sort((a, b) => a - b)).toEqual(sent.map((_, i) => i));
    for (let k = 0; k < 5; k++) {
      const forKey = received.filter((m) => m.key === `user-${k}`);
      // One key, one partition, and the order it was produced in.
      expect(new Set(forKey.map((m) => m.partition)).size).toBe(1);
      expect(forKey.map((m) => m.seq)).toEqual([k, k + 5, k + 10, k + 15, k + 20, k + 25]);
    }
  });

  it('commits the group offsets to the broker', async () => {
    const groupId = uniqueName('infra-kafka-commit');
    const consumer = client.consumer({ groupId });
    consumers.push(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen}/30 messages consumed`)), 60_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
            seen += 1;
            if (seen === 30) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.stop();
    // Every partition that holds messages is committed up to its end; an empty
    // partition has no commit (-1) and a high watermark of 0.
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const committed = new Map(offsets!.partitions.map((p) => [p.partition, Number(p.offset)]));
    const ends = await admin.fetchTopicOffsets(topic);
    expect(ends.reduce((n, p) => n + Number(p.high), 0)).toBe(30);
    for (const p of ends) expect(Math.max(committed.get(p.partition) ?? -1, 0)).toBe(Number(p.high));
  });
});
