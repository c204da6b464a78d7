import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { createTopic, deleteTopics, RecordProducer } from '../../lib/kafka/client.js';
import { checkpointDirOf } from '../../lib/worker-config/names.js';
import { toWire } from '../../workers/events/wire.js';
import { runWorker } from '../../workers/main.js';
import { DLQ_HEADERS } from '../../workers/runtime/kafka-worker.js';
import { readRecords } from '../support/kafka.js';
import { uniqueName } from '../support/infra.js';
import { connection, readHashes, tempDir, waitCheckpointedToEnd, waitFor, workerConfigFor, workerTestFile } from '../support/workers.js';

const { quiet, redis, running } = workerTestFile();

const metricsOf = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/**
 * "A worker never stops on data": with a dead-letter topic that cannot be
 * created (Kafka refuses its name: it collides with an existing topic), good
 * events keep flowing, the malformed ones are kept beside the checkpoint with
 * their offset and reason, the worker says what it waits for, and once the topic can
 * be created (after a restart too) the kept dead letters land in it.
 */
it('keeps consuming when the dead-letter topic cannot be written, keeps the dead letters durable beside the checkpoint, and sends them once it can', async () => {
  // The job's topics by hand: no dead-letter topic (one created and deleted just before would race the squatter).
  const name = uniqueName('dlqdown');
  const job = { name, topic: `${name}.events`, group: `${name}-group`, prefix: `${name}:`, checkpointDir: tempDir(`${name}-cp-`) };
  const dlq = `${job.topic}.dlq`;
  // Kafka refuses a topic whose name equals another's with '.' and '_' swapped.
  const squatter = dlq.replaceAll('.', '_');
  for (const [topic, partitions] of [[job.topic, 2], [squatter, 1]] as const) {
    // A topic just created may not be in the broker's metadata yet when kafkajs waits for its leaders: ask again.
    await waitFor(`topic ${topic}`, 30_000, () => createTopic(connection(), topic, partitions).then(() => true, () => undefined));
  }

  const tag = uniqueName('u');
  const t0 = Date.parse('2026-03-01T10:00:00Z');
  const producer = await RecordProducer.connect(connection());
  const records: Array<{ key: string; value: string; partition: number }> = [];
  for (let i = 0; i < 60; i++) records.push({ key: `${tag}-${i}`, value: toWire({ userId: `${tag}-${i}`, eventType: 'page_view', eventTime: t0 + i * 1000, sessionId: 's' }), partition: i % 2 });
  // Bad events early in each partition: good ones after them must not wait.
  records.splice(2, 0, { key: 'b0', value: 'not an event', partition: 0 }, { key: 'b1', value: '{"user_id":"x"}', partition: 1 }, { key: 'b2', value: '[]', partition: 0 });
  await producer.send(job.topic, records);
  await producer.disconnect();

  const config = workerConfigFor(job, 'churn');
  const first = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(first);

  // Every good event scored although no dead letter could be sent.
  await waitFor('all good users scored', 60_000, async () => ((await readHashes(redis, job.prefix, 'user:*')).size === 60 ? true : undefined));
  await waitCheckpointedToEnd(job, 2, 60_000);
  const metrics = await metricsOf(first.metricsPort);
  expect(metrics).toMatch(/sluice_stalled\{[^}]*on="dlq"[^}]*reason="DeadLetterTopicMissing"[^}]*\} 1/);
  expect(metrics).toMatch(/sluice_dlq_pending\{[^}]*\} 3\b/);
  expect(first.readiness()).toMatchObject({ ready: true });
  expect(first.readiness().detail).toMatch(/waiting for the dead-letter topic .*DeadLetterTopicMissing/);

  // Durable: beside the checkpoints, each bad event's offset and reason (fsynced before its batch was checkpointed).
  const dir = checkpointDirOf(config.checkpoint.dir, config.kafka.consumerGroup, config.kafka.topic);
  const kept = readdirSync(dir)
    .filter((f) => f.endsWith('.dead-letters.jsonl'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { offset: number; headers: Record<string, string> }));
  expect(kept).toHaveLength(3);
  expect(kept.map((d) => d.headers[DLQ_HEADERS.reason]).sort()).toEqual([expect.stringMatching(/JSON object/), expect.stringMatching(/event_type: required|event_type/), expect.stringMatching(/not JSON/)].sort());
  expect(kept.every((d) => Number(d.headers[DLQ_HEADERS.offset]) >= 0)).toBe(true);

  // A restart does not lose them; once the topic can be created they are sent.
  await first.stop();
  running.splice(running.indexOf(first), 1);
  await deleteTopics(connection(), [squatter]);
  const second = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(second);
  const dead = await readRecords(connection(), dlq, 3, 60_000);
  expect(dead.map((d) => d.headers[DLQ_HEADERS.reason]).sort()).toEqual(kept.map((d) => d.headers[DLQ_HEADERS.reason]).sort());
  expect(dead.find((d) => d.value?.toString() === 'not an event')).toBeDefined();
  await waitFor('no dead letter pending', 30_000, async () => (/sluice_dlq_pending\{[^}]*\} 0\b/.test(await metricsOf(second.metricsPort)) ? true : undefined));
  expect(readdirSync(dir).filter((f) => f.endsWith('.dead-letters.jsonl'))).toEqual([]);
  expect(await metricsOf(second.metricsPort)).not.toMatch(/sluice_stalled\{[^}]*on="dlq"/);
});
