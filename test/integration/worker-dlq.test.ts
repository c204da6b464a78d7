import { expect, it } from 'vitest';
import { toWire } from '../../workers/events/wire.js';
import { runWorker } from '../../workers/main.js';
import { DLQ_HEADERS } from '../../workers/runtime/kafka-worker.js';
import { RecordProducer } from '../../lib/kafka/client.js';
import { readRecords } from '../support/kafka.js';
import { uniqueName } from '../support/infra.js';
import {
  connection,
  newTestJob,
  readHashes,
  waitCheckpointedToEnd,
  workerConfigFor,
  workerTestFile,
} from '../support/workers.js';

const { quiet, redis, running } = workerTestFile();

it('sends malformed events of many kinds to the dead-letter topic with the reason, counts them and keeps going', async () => {
  const job = await newTestJob('dlq', 2);
  const tag = uniqueName('d');
  const t = '2026-03-01T10:00:00Z';
  const good = (n: number): string => toWire({ userId: `${tag}-ok${n}`, eventType: 'page_view', eventTime: Date.parse(t) + n * 1000, sessionId: 's' });
  // [value, what the reason must mention]
  const bad: Array<[string | null, RegExp]> = [
    ['this is not json', /not JSON/],
    ['', /empty message/],
    [null, /null/],
    ['[1,2,3]', /JSON object/],
    ['"just a string"', /JSON object/],
    [`{"event_type":"page_view","event_time":"${t}"}`, /user_id: required/],
    [`{"user_id":"${tag}-x","event_type":"teleport","event_time":"${t}"}`, /event_type: unknown type/],
    [`{"user_id":"${tag}-x","event_type":"page_view"}`, /event_time: required/],
    [`{"user_id":"${tag}-x","event_type":"page_view","event_time":1772359200}`, /epoch seconds/],
    [`{"user_id":"${tag}-x","event_type":"page_view","event_time":"2026-03-01T10:00:00"}`, /zone/],
    [`{"user_id":"${tag}-x","event_type":"add_to_cart","event_time":"${t}","price":3}`, /product_id: required/],
    [`{"user_id":"${tag}-x","event_type":"add_to_cart","event_time":"${t}","product_id":"p","price":-4}`, /price/],
    [`{"user_id":{"id":1},"event_type":"page_view","event_time":"${t}"}`, /user_id/],
    ['{"user_id":"trunc', /not JSON/],
  ];
  const producer = await RecordProducer.connect(connection());
  const records: Array<{ key: string; value: string | null; partition: number }> = [];
  bad.forEach(([value], i) => {
    records.push({ key: `k${i}`, value: good(i), partition: i % 2 });
    records.push({ key: `k${i}`, value, partition: i % 2 });
  });
  await producer.send(job.topic, records);
  await producer.disconnect();

  const worker = await runWorker(workerConfigFor(job, 'churn'), { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(worker);
  await waitCheckpointedToEnd(job, 2, 60_000);

  const dead = await readRecords(connection(), `${job.topic}.dlq`, bad.length, 30_000);
  expect(dead).toHaveLength(bad.length);
  for (const [value, reason] of bad) {
    const match = dead.find((d) => (d.value === null ? null : d.value.toString('utf8')) === value);
    expect(match, `dead letter for ${JSON.stringify(value)}`).toBeDefined();
    expect(match!.headers[DLQ_HEADERS.reason]).toMatch(reason);
    expect(match!.headers[DLQ_HEADERS.topic]).toBe(job.topic);
    expect(match!.headers[DLQ_HEADERS.job]).toBe(job.name);
    expect(Number(match!.headers[DLQ_HEADERS.offset])).toBeGreaterThanOrEqual(0);
  }
  // The good events around them were all scored.
  const users = await readHashes(redis, job.prefix, 'user:*');
  expect([...users.keys()].sort()).toEqual(bad.map((_, i) => `user:${tag}-ok${i}`).sort());
  const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
  expect(metrics).toMatch(new RegExp(`sluice_dlq_events_total\\{[^}]*\\} ${bad.length}\\b`));
  expect(worker.readiness().ready).toBe(true);
});
