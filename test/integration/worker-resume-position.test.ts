/**
 * Where a restored partition resumes. The checkpoint decides, never the
 * group's committed offset: a new worker process whose checkpoint is behind
 * the committed offset (a checkpoint that landed after its partition had
 * moved, a chain cut short by a torn file, a restored snapshot, an offset
 * reset by a tool) reads again from the checkpoint and skips nothing.
 */
import pino from 'pino';
import { expect, it } from 'vitest';
import { deleteRecordsBefore, setGroupOffsets, topicEndOffsets } from '../../lib/kafka/client.js';
import { EventGenerator } from '../../workers/events/generator.js';
import { runInProcess } from '../../workers/in-process.js';
import { runWorker } from '../../workers/main.js';
import { uniqueName } from '../support/infra.js';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import type { UserEvent } from '../../workers/events/types.js';
import { checkpointOffsets, connection, newTestJob, produceEvents, readHashes, taggedEvents, waitCheckpointedToEnd, workerConfigFor, workerTestFile, type TestJob } from '../support/workers.js';

const { quiet, redis, running } = workerTestFile();
const PARTITIONS = 2;
const sorted = (h: Record<string, string> | undefined): string => JSON.stringify(Object.entries(h ?? {}).sort());

/** A churn job whose first third of the events a worker checkpointed, then stopped. */
async function firstThirdCheckpointed(base: string, seed: number): Promise<{ job: TestJob; events: UserEvent[]; third: number; config: WorkerConfig }> {
  const job = await newTestJob(base, PARTITIONS);
  const events = taggedEvents(uniqueName('u'), new EventGenerator({ seed, users: 120, days: 10 }));
  const third = Math.floor(events.length / 3);
  const config = workerConfigFor(job, 'churn');
  await produceEvents(job.topic, events.slice(0, third));
  const first = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  await waitCheckpointedToEnd(job, PARTITIONS, 60_000);
  await first.stop();
  return { job, events, third, config };
}

it('a new worker resumes each partition from its checkpoint when the group has committed further, skipping nothing', { timeout: 120_000 }, async () => {
  const { job, events, third, config } = await firstThirdCheckpointed('resume-ahead', 13);
  const checkpointed = checkpointOffsets(job, PARTITIONS);

  // The second third arrives while no member runs, and the group's committed offsets are moved past it.
  await produceEvents(job.topic, events.slice(third, 2 * third));
  const ahead = await topicEndOffsets(connection(), job.topic);
  await setGroupOffsets(connection(), job.group, job.topic, ahead);
  await produceEvents(job.topic, events.slice(2 * third));

  const second = await runWorker(config, { logger: quiet, metricsHost: '127.0.0.1' });
  running.push(second);
  await waitCheckpointedToEnd(job, PARTITIONS, 60_000);
  for (let p = 0; p < PARTITIONS; p++) expect(ahead.get(p), `partition ${p}: committed ahead of its checkpoint`).toBeGreaterThan(checkpointed[p]!);

  const expected = await runInProcess({ type: 'churn', source: events });
  await expected.done;
  const hashes = await readHashes(redis, job.prefix, 'user:*');
  expect(hashes.size).toBe(expected.store.users.size);
  const differing = [...hashes].filter(([key, fields]) => sorted(fields) !== sorted(expected.store.users.get(key.slice('user:'.length))));
  expect(differing.map(([key]) => key), 'users whose state missed the events between the checkpoint and the committed offset').toEqual([]);
  const metrics = await (await fetch(`http://127.0.0.1:${second.metricsPort}/metrics`)).text();
  const read = Number(/sluice_events_in_total\{[^}]*\} (\d+)/.exec(metrics)?.[1]);
  expect(read, 'events the second worker read: everything after the checkpoint').toBe(events.length - third);
});

it('continues from the first record the broker still has when retention deleted what followed its checkpoint, and says so', { timeout: 120_000 }, async () => {
  const { job, events, third, config } = await firstThirdCheckpointed('resume-deleted', 14);

  // The second third is gone before any member read it.
  await produceEvents(job.topic, events.slice(third, 2 * third));
  await deleteRecordsBefore(connection(), job.topic, await topicEndOffsets(connection(), job.topic));
  await produceEvents(job.topic, events.slice(2 * third));

  const lines: string[] = [];
  const second = await runWorker(config, { logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }), metricsHost: '127.0.0.1' });
  running.push(second);
  await waitCheckpointedToEnd(job, PARTITIONS, 60_000);
  const said = lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m.includes("deleted by the topic's retention"));
  expect(said, 'one warning per partition naming the records lost').toHaveLength(PARTITIONS);
  expect(said[0]).toMatch(/^records \d+\.\.\d+ of partition \d were deleted by the topic's retention before this job read them: continuing from \d+$/);
  const expected = await runInProcess({ type: 'churn', source: [...events.slice(0, third), ...events.slice(2 * third)] });
  await expected.done;
  const hashes = await readHashes(redis, job.prefix, 'user:*');
  const differing = [...hashes].filter(([key, fields]) => sorted(fields) !== sorted(expected.store.users.get(key.slice('user:'.length))));
  expect(differing.map(([key]) => key), 'users differing from a run over the events the broker kept').toEqual([]);
  expect(hashes.size).toBe(expected.store.users.size);
});
