/**
 * The stream runtime on Kafka: one consumer group member whose partitions each
 * carry their own job state. State and the next offset are checkpointed
 * together, and a partition's position is always taken from its checkpoint
 * (Kafka's committed offsets only follow), so a crash or a rebalance replays
 * from a point that matches the state exactly: nothing lost, nothing counted
 * twice.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { parseEvent } from '../events/validate.js';
import type { UserEvent } from '../events/types.js';
import type { JobOutputs, PartitionState, StreamJob } from './job.js';
import type { AlertDispatcher } from '../jobs/cart/alerts.js';
import { CheckpointStore, type CheckpointOutcome } from './checkpoint.js';
import { heartbeat, HEARTBEAT_MS, leave, snapshotDir, snapshotPartitionsDir, snapshotRequests, writeJsonFile } from './control.js';
import { StateIncompatibleError } from '../state/format.js';
import { writeBase } from '../state/checkpoints.js';
import {
  GroupConsumer,
  RecordProducer,
  TopicAdmin,
  type ConsumedRecord,
  type KafkaConnectionOptions,
  type OutgoingRecord,
  type PartitionBatch,
} from '../../lib/kafka/client.js';
import type { WorkerMetrics } from './metrics.js';
import { retryUntilDone, StoppedError } from './retry.js';
import type { ResultSink } from './sink.js';

export const DLQ_HEADERS = {
  reason: 'sluice-dlq-reason',
  topic: 'sluice-source-topic',
  partition: 'sluice-source-partition',
  offset: 'sluice-source-offset',
  job: 'sluice-job',
} as const;

/** How far ahead of the worker's clock an event may be dated when the config does not say (eventTime.maxFutureSkewSeconds). */
export const DEFAULT_MAX_FUTURE_SKEW_SECONDS = 300;

/** The dead-letter reason of an event dated too far ahead. */
export function futureReason(eventTime: number, now: number, skewMs: number): string {
  const ahead = eventTime - now;
  const human = ahead >= 2 * 86_400_000 ? `${Math.round(ahead / 86_400_000)} days` : ahead >= 7_200_000 ? `${Math.round(ahead / 3_600_000)} hours` : `${Math.round(ahead / 1000)} s`;
  return (
    `event_time: ${new Date(eventTime).toISOString()} is ${human} ahead of the worker's clock (${new Date(now).toISOString()}), ` +
    `more than the allowed ${skewMs / 1000} s (eventTime.maxFutureSkewSeconds): it would move the partition's event time; check the producer's clock`
  );
}

/** What a failed checkpoint write says in /readyz and the log: a full volume by name, with what to do. */
function checkpointFailure(err: Error & { code?: string }): string {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT' || /ENOSPC|no space left/i.test(err.message)) {
    return `checkpoint volume full (${err.message}): free space on it or enlarge it (spec.checkpoint.size); the previous checkpoint is kept`;
  }
  return `checkpoint write failed (${err.message}); the previous checkpoint is kept`;
}

export interface KafkaWorkerOptions<S extends PartitionState> {
  config: WorkerConfig;
  connection: KafkaConnectionOptions;
  job: StreamJob<S>;
  sink: ResultSink;
  alerts: AlertDispatcher;
  metrics: WorkerMetrics;
  logger: Logger;
  /** A caught-up partition quiet this long has its event time moved by the wall clock (cart timers). */
  idleAfterMs?: number;
  tickMs?: number;
  /** Kafka gave up for good, or a checkpoint holds state this job cannot use: the process should exit. */
  onFatal?: (err: Error) => void;
  /** This member's name in the heartbeat files on the checkpoint volume (default host-pid). */
  memberId?: string;
}

interface Owned<S extends PartitionState> {
  partition: number;
  state: S;
  /** First offset not in `state`; -1 when there was no checkpoint (take what the group offers). */
  nextOffset: number;
  seekedTo: number | undefined;
  /** Why the last checkpoint write failed (volume full...), until one succeeds: /readyz says so. */
  checkpointError?: string;
  /** End of the partition as last seen (batch or admin), -1 when unknown. */
  highWatermark: number;
  dirty: boolean;
  lastCheckpointAt: number;
  /** Wall time of the last batch (or of the restore): a partition behind its end with no batch for long is sought again. */
  lastBatchAt: number;
  /** Next offset of the last durable checkpoint (-1: none), and the highest this owner committed to the group. */
  durable: number;
  committed: number;
  committing: boolean;
  /** Event time and wall time when the partition last had events, for the idle clock. */
  idleBase: { watermark: number; wall: number } | undefined;
}

/** Serialises the work on one partition (batches, timers, checkpoints). */
class PartitionLock {
  private tail: Promise<unknown> = Promise.resolve();
  private depth = 0;

  get busy(): boolean {
    return this.depth > 0;
  }

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    this.depth += 1;
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined).finally(() => (this.depth -= 1));
    return result;
  }
}

export class KafkaWorker<S extends PartitionState> {
  private consumer: GroupConsumer | undefined;
  private producer: RecordProducer | undefined;
  private admin: TopicAdmin | undefined;
  private assignment: number[] = [];
  private joined = false;
  private readonly owned = new Map<number, Owned<S>>();
  private readonly locks = new Map<number, PartitionLock>();
  private readonly checkpoints: CheckpointStore<S>;
  private stopping = false;
  private fatal: Error | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private lastEndOffsetsAt = 0;
  /** Why a partition could not be restored (a checkpoint of another job, unreadable...), for /readyz. */
  private readonly restoreErrors = new Map<number, string>();
  private readonly intervalMs: number;
  private readonly maxFutureSkewMs: number;
  private readonly log: Logger;
  private readonly memberId: string;
  private lastHeartbeatAt = 0;
  private lastRequestsAt = 0;
  /** Snapshot partitions already written by this member, `<name>/<partition>`. */
  private readonly snapshotted = new Set<string>();

  constructor(private readonly o: KafkaWorkerOptions<S>) {
    const k = o.config.kafka;
    this.checkpoints = new CheckpointStore(o.config.checkpoint.dir, k.consumerGroup, k.topic, o.job);
    this.intervalMs = o.config.checkpoint.intervalSeconds * 1000;
    this.maxFutureSkewMs = (o.config.eventTime?.maxFutureSkewSeconds ?? DEFAULT_MAX_FUTURE_SKEW_SECONDS) * 1000;
    this.log = o.logger;
    this.memberId = (o.memberId ?? `${hostname()}-${process.pid}`).replace(/[^A-Za-z0-9._-]/g, '_');
  }

  async start(): Promise<void> {
    const k = this.o.config.kafka;
    this.producer = await RecordProducer.connect(this.o.connection);
    this.admin = await TopicAdmin.connect(this.o.connection);
    const dlq = k.deadLetterTopic;
    if (!(await this.admin.topicExists(dlq).catch(() => true))) {
      this.log.warn({ deadLetterTopic: dlq }, `dead-letter topic ${dlq} does not exist: create it (or enable auto-creation), or the first malformed event will pause consumption until it exists`);
    }
    this.consumer = await GroupConsumer.start(
      this.o.connection,
      {
        groupId: k.consumerGroup,
        topic: k.topic,
        startFrom: k.startFrom,
        sessionTimeoutMs: (k.sessionTimeoutSeconds ?? 30) * 1000,
        heartbeatIntervalMs: Math.min(3_000, ((k.sessionTimeoutSeconds ?? 30) * 1000) / 5),
      },
      {
        onAssignment: (partitions) => this.onAssignment(partitions),
        onRebalancing: () => this.onRebalancing(),
        onBatch: (batch) => this.onBatch(batch),
        onCrash: (err) => {
          this.fatal = err;
          this.log.fatal({ err: err.message }, 'kafka consumer stopped for good');
          this.o.onFatal?.(err);
        },
      },
    );
    this.ticker = setInterval(() => this.tick(), this.o.tickMs ?? 500);
    this.ticker.unref();
  }

  readiness(): { ready: boolean; detail: string } {
    if (this.fatal) return { ready: false, detail: `kafka consumer failed: ${this.fatal.message}` };
    if (this.stopping) return { ready: false, detail: 'stopping' };
    if (!this.joined) return { ready: false, detail: `joining consumer group ${this.o.config.kafka.consumerGroup}` };
    const failing = [...this.owned.values()].filter((o) => o.checkpointError);
    if (failing.length) {
      return { ready: false, detail: `checkpoints failing for partitions ${failing.map((o) => o.partition).join(',')}: ${failing[0].checkpointError}` };
    }
    const pending = this.assignment.filter((p) => !this.owned.has(p));
    if (pending.length) {
      const errors = pending.filter((p) => this.restoreErrors.has(p)).map((p) => `partition ${p}: ${this.restoreErrors.get(p)}`);
      return { ready: false, detail: `restoring partitions ${pending.join(',')}${errors.length ? `; failing: ${errors.join('; ')}` : ''}` };
    }
    return { ready: true, detail: `ready: partitions [${this.assignment.join(',')}] restored` };
  }

  /** Partitions owned now and the offset each resumes from, for tests and status. */
  positions(): Map<number, number> {
    return new Map([...this.owned.values()].map((o) => [o.partition, o.nextOffset]));
  }

  private lock(partition: number): PartitionLock {
    let l = this.locks.get(partition);
    if (!l) {
      l = new PartitionLock();
      this.locks.set(partition, l);
    }
    return l;
  }

  private onAssignment(partitions: number[]): void {
    this.assignment = partitions;
    this.joined = true;
    for (const p of [...this.owned.keys()]) {
      if (!partitions.includes(p)) {
        // Revoked: the new owner restores from the checkpoint written when the rebalance began.
        this.drop(p);
        this.o.metrics.lag.remove({ partition: String(p) });
      }
    }
    this.o.metrics.assigned.set(partitions.length);
    this.log.info({ partitions }, 'partitions assigned');
    for (const p of partitions) {
      if (!this.owned.has(p)) this.restoreInBackground(p);
    }
  }

  /** Forgets a partition's state (revoked, or to be restored from its checkpoint); a disk-backed store's files go too. */
  private drop(partition: number): void {
    const o = this.owned.get(partition);
    if (!o) return;
    this.owned.delete(partition);
    o.state.table.dispose().catch((err: Error) => this.log.warn({ partition, err: err.message }, 'could not remove the local state store'));
  }

  private restoreInBackground(partition: number): void {
    void this.lock(partition)
      .run(() => this.ensureOwned(partition))
      .then(() => this.restoreErrors.delete(partition))
      .catch((err: Error) => {
        if (this.restoreErrors.get(partition) !== err.message) this.log.error({ partition, err: err.message }, 'restore failed; retrying');
        this.restoreErrors.set(partition, err.message);
        if (err instanceof StateIncompatibleError && !this.fatal) {
          // Never start such a partition from zero behind the user's back: stop and say what to do.
          this.fatal = err;
          this.log.fatal({ partition, code: err.code }, err.message);
          this.o.onFatal?.(err);
        }
      });
  }

  /** Synchronous on purpose (see CheckpointStore.saveNow): runs before this member rejoins the group. */
  private onRebalancing(): void {
    for (const o of this.owned.values()) {
      // A checkpoint still in flight may not be durable before the partition moves: saveNow replaces it.
      if ((o.dirty || this.checkpoints.inFlight(o.partition)) && !this.lock(o.partition).busy) this.checkpointNow(o);
    }
  }

  private ensureOwned(partition: number): Owned<S> {
    const existing = this.owned.get(partition);
    if (existing) return existing;
    const cp = this.checkpoints.load(partition);
    const owned: Owned<S> = {
      partition,
      state: cp ? cp.state : this.o.job.newState(),
      nextOffset: cp ? cp.nextOffset : -1,
      seekedTo: undefined,
      highWatermark: -1,
      dirty: false,
      lastCheckpointAt: Date.now(),
      lastBatchAt: Date.now(),
      idleBase: undefined,
      durable: cp ? cp.nextOffset : -1,
      committed: -1,
      committing: false,
    };
    if (cp) {
      this.consumer?.seek(partition, cp.nextOffset);
      owned.seekedTo = cp.nextOffset;
    }
    this.owned.set(partition, owned);
    this.o.metrics.restores.inc();
    this.log.info(
      { partition, nextOffset: owned.nextOffset, users: owned.state.table.size, checkpoint: cp ? new Date(cp.savedAt).toISOString() : null, read: cp?.detail },
      cp ? 'partition restored from checkpoint' : 'partition starts without checkpoint',
    );
    return owned;
  }

  private async onBatch(batch: PartitionBatch): Promise<void> {
    const p = batch.partition;
    await this.lock(p).run(async () => {
      if (this.stopping || !this.assignment.includes(p)) return;
      const o = this.ensureOwned(p);
      o.lastBatchAt = Date.now();
      if (batch.isStale()) return;
      let records = batch.records;
      if (o.nextOffset >= 0 && records.length > 0 && records[0].offset > o.nextOffset) {
        if (o.seekedTo !== o.nextOffset) {
          this.consumer?.seek(p, o.nextOffset);
          o.seekedTo = o.nextOffset;
          return;
        }
        this.log.warn({ partition: p, expected: o.nextOffset, got: records[0].offset }, 'records missing before this batch (deleted by retention?): continuing from what the broker has');
      }
      if (o.nextOffset >= 0) records = records.filter((r) => r.offset >= o.nextOffset);
      o.highWatermark = Math.max(o.highWatermark, batch.highWatermark);
      if (records.length > 0 && !(await this.processRecords(o, records, batch.heartbeat))) return;
      batch.consumed();
      this.updateLag(o);
    });
  }

  /** Returns false when the batch was given up (stopping): its records will be read again. */
  private async processRecords(o: Owned<S>, records: ConsumedRecord[], heartbeat: () => Promise<void>): Promise<boolean> {
    const events: UserEvent[] = [];
    const ingest: number[] = [];
    const dead: OutgoingRecord[] = [];
    // One producer with a wrong clock must not move the partition's event time (a churn rescoring of every
    // user, cart timers firing early): an event dated beyond the worker's clock plus the allowed skew is refused.
    const wallNow = Date.now();
    const latest = wallNow + this.maxFutureSkewMs;
    for (const r of records) {
      const parsed = parseEvent(r.value);
      if (!parsed.ok) dead.push(this.deadLetter(o.partition, r, parsed.reason));
      else if (parsed.event.eventTime > latest) dead.push(this.deadLetter(o.partition, r, futureReason(parsed.event.eventTime, wallNow, this.maxFutureSkewMs)));
      else {
        events.push(parsed.event);
        ingest.push(r.timestamp);
      }
    }
    this.o.metrics.eventsIn.inc(records.length);
    try {
      const outputs = await this.o.job.process(o.state, events);
      await heartbeat();
      if (dead.length) {
        await retryUntilDone(() => this.producer!.send(this.o.config.kafka.deadLetterTopic, dead), this.retryOptions('kafka', heartbeat));
      }
      await this.deliver(outputs, heartbeat);
    } catch (err) {
      // The state has moved past its checkpoint but the results did not all land: forget it, restore and replay.
      this.drop(o.partition);
      if (err instanceof StoppedError) return false;
      throw err;
    }
    const now = Date.now();
    o.nextOffset = records[records.length - 1].offset + 1;
    // Progress was made: a later gap deserves its own seek.
    o.seekedTo = undefined;
    o.dirty = true;
    o.idleBase = { watermark: this.o.job.watermark(o.state), wall: now };
    this.o.metrics.deadLetters.inc(dead.length);
    for (const t of ingest) this.o.metrics.eventToScore.observe(Math.max(0, now - t) / 1000);
    this.maybeCheckpoint(o, now);
    return true;
  }

  private deadLetter(partition: number, r: ConsumedRecord, reason: string): OutgoingRecord {
    const { topic } = this.o.config.kafka;
    this.log.debug({ partition, offset: r.offset, reason }, 'malformed event to the dead-letter topic');
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
        [DLQ_HEADERS.job]: this.o.config.job.name,
      },
    };
  }

  private retryOptions(target: string, between?: () => Promise<void>): Parameters<typeof retryUntilDone>[1] {
    return {
      target,
      logger: this.log,
      between,
      shouldStop: () => this.stopping,
      onRetry: () => this.o.metrics.retries.inc({ target }),
    };
  }

  private async deliver(outputs: JobOutputs, between?: () => Promise<void>): Promise<void> {
    if (outputs.scoredRows > 0) {
      this.o.metrics.inference.observe(outputs.inferenceMs / 1000);
      this.o.metrics.inferenceRows.inc(outputs.scoredRows);
    }
    if (outputs.writes.length) {
      await retryUntilDone(() => this.o.sink.writeUsers(outputs.writes), this.retryOptions('redis', between));
      this.o.metrics.eventsOut.inc(outputs.writes.length);
      await between?.();
    }
    if (outputs.alerts.length) {
      await retryUntilDone(() => this.o.alerts.dispatch(outputs.alerts, between), this.retryOptions('alerts', between));
      this.o.metrics.eventsOut.inc(outputs.alerts.length);
    }
  }

  /**
   * Starts a checkpoint once the interval has passed: cut now, encoded and
   * written in the background; Kafka's committed offset follows when it is durable.
   */
  private maybeCheckpoint(o: Owned<S>, now: number): void {
    if (!o.dirty || now - o.lastCheckpointAt < this.intervalMs) return;
    if (this.owned.get(o.partition) !== o || o.nextOffset < 0) return;
    const started = this.checkpoints.begin(o.partition, o.state, o.nextOffset);
    // One in flight still: the next batch or tick tries again.
    if (!started) return;
    o.dirty = false;
    o.lastCheckpointAt = now;
    started
      .then((done) => {
        if (!done) return;
        this.checkpointed(o, done);
        o.durable = Math.max(o.durable, done.nextOffset);
        return this.commitDurable(o);
      })
      .catch((err: Error) => {
        // Nothing new is durable: the next checkpoint covers these changes too.
        if (this.owned.get(o.partition) === o) o.dirty = true;
        const why = checkpointFailure(err);
        this.o.metrics.checkpointFailures.inc();
        if (o.checkpointError !== why) this.log.error({ partition: o.partition, err: err.message, dir: this.checkpoints.dir }, `${why}; retrying at the next interval`);
        o.checkpointError = why;
      });
  }

  /** Checkpoints synchronously (rebalance, shutdown). */
  private checkpointNow(o: Owned<S>): void {
    if (this.owned.get(o.partition) !== o || o.nextOffset < 0) return;
    let done: CheckpointOutcome;
    try {
      done = this.checkpoints.saveNow(o.partition, o.state, o.nextOffset);
    } catch (err) {
      // The rebalance path cannot wait: the partition's new owner restores the previous checkpoint and replays.
      o.checkpointError = checkpointFailure(err as Error);
      this.o.metrics.checkpointFailures.inc();
      this.log.error({ partition: o.partition, err: (err as Error).message }, o.checkpointError);
      return;
    }
    o.dirty = false;
    o.lastCheckpointAt = Date.now();
    o.durable = Math.max(o.durable, done.nextOffset);
    this.checkpointed(o, done);
  }

  /**
   * Brings the group's committed offset up to the last durable checkpoint. The
   * checkpoint is what counts, but the committed offsets are what the operator
   * (status.consumerLag) and Kafka's tools see: a checkpoint written at a
   * rebalance, one restored by a new owner, or a commit that failed during a
   * rebalance, would otherwise leave them behind until the next event, which on
   * a quiet topic never comes. Retried from the periodic work until it lands.
   */
  private commitDurable(o: Owned<S>): Promise<void> | undefined {
    if (o.committing || o.durable < 0 || o.durable <= o.committed || !this.consumer) return undefined;
    o.committing = true;
    const offset = o.durable;
    return this.consumer
      .commit([{ partition: o.partition, offset }])
      .then(() => {
        o.committed = Math.max(o.committed, offset);
      })
      .catch((err: Error) => this.log.debug({ partition: o.partition, err: err.message }, 'offset commit failed (the checkpoint is what counts; retried)'))
      .finally(() => {
        o.committing = false;
      });
  }

  private checkpointed(o: Owned<S>, done: CheckpointOutcome): void {
    if (o.checkpointError) this.log.info({ partition: o.partition, nextOffset: done.nextOffset }, 'checkpoint written again');
    o.checkpointError = undefined;
    this.o.metrics.checkpointSeconds.observe(done.ms / 1000);
    this.o.metrics.checkpointBytes.set({ partition: String(o.partition) }, done.bytes);
    this.o.metrics.lastCheckpoint.set(Date.now() / 1000);
  }

  /**
   * Answers snapshot requests on the checkpoint volume: every partition this
   * member owns is written between two batches (under the partition's lock),
   * its whole state and next offset as one base, into the snapshot's directory.
   * The table is read, not cut: the live checkpoints go on undisturbed.
   */
  private serveSnapshotRequests(now: number): void {
    if (now - this.lastRequestsAt < 1_000) return;
    this.lastRequestsAt = now;
    const root = this.o.config.checkpoint.dir;
    let requests;
    try {
      requests = snapshotRequests(root);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot read snapshot requests');
      return;
    }
    for (const { name } of requests) {
      const dir = snapshotPartitionsDir(snapshotDir(root, name));
      for (const o of this.owned.values()) {
        const key = `${name}/${o.partition}`;
        if (this.snapshotted.has(key)) continue;
        this.snapshotted.add(key);
        void this.lock(o.partition)
          .run(() => {
            if (this.owned.get(o.partition) !== o) {
              this.snapshotted.delete(key);
              return;
            }
            const started = performance.now();
            const id = { jobType: this.o.job.type, topic: this.o.config.kafka.topic, partition: o.partition, format: this.o.job.stateFormat };
            const written = writeBase(dir, id, o.state.table, this.o.job.meta(o.state), o.nextOffset);
            // Written last: its presence says the partition is complete.
            writeJsonFile(`${dir}/${o.partition}.json`, { partition: o.partition, nextOffset: o.nextOffset, modelVersion: this.o.job.modelVersion, savedAt: Date.now(), ...written });
            this.log.info({ snapshot: name, partition: o.partition, nextOffset: o.nextOffset, users: written.users, ms: Math.round(performance.now() - started) }, 'partition written to snapshot');
          })
          .catch((err: Error) => {
            this.snapshotted.delete(key);
            this.log.error({ snapshot: name, partition: o.partition, err: err.message }, 'cannot write partition snapshot');
          });
      }
    }
  }

  private beat(now: number): void {
    if (now - this.lastHeartbeatAt < HEARTBEAT_MS) return;
    this.lastHeartbeatAt = now;
    try {
      heartbeat(this.o.config.checkpoint.dir, { id: this.memberId, pid: process.pid, host: hostname(), at: now, partitions: [...this.owned.keys()] });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot write heartbeat on the checkpoint volume');
    }
  }

  /**
   * The consumer can resume a partition from the group's committed offset
   * although its checkpoint (restored from a snapshot, or reset) is behind it;
   * then no batch comes while the partition is behind its end. Seek to the
   * checkpoint's offset again.
   */
  private reseekIfStuck(o: Owned<S>, now: number): void {
    if (o.nextOffset < 0 || o.highWatermark <= o.nextOffset || now - o.lastBatchAt < 3_000) return;
    this.log.info({ partition: o.partition, nextOffset: o.nextOffset, end: o.highWatermark }, 'no records while behind the end of the partition: seeking to the checkpoint offset again');
    this.consumer?.seek(o.partition, o.nextOffset);
    o.seekedTo = o.nextOffset;
    o.lastBatchAt = now;
  }

  private readonly warnedAhead = new Set<number>();

  private updateLag(o: Owned<S>): void {
    if (o.highWatermark >= 0 && o.nextOffset > o.highWatermark && !this.warnedAhead.has(o.partition)) {
      // Only a topic deleted and created again does this: its new records are skipped until they pass the checkpoint.
      this.warnedAhead.add(o.partition);
      this.log.error(
        { partition: o.partition, checkpointOffset: o.nextOffset, topicEnd: o.highWatermark, dir: this.checkpoints.dir },
        'checkpoint is ahead of the end of the partition (was the topic recreated?): move the checkpoint away to start the partition afresh',
      );
    }
    if (o.highWatermark >= 0 && o.nextOffset >= 0) {
      this.o.metrics.lag.set({ partition: String(o.partition) }, Math.max(0, o.highWatermark - o.nextOffset));
    }
  }

  /** Periodic work: restore dropped partitions, learn end offsets, move idle event time, checkpoint. */
  private tick(): void {
    if (this.stopping || this.fatal) return;
    const now = Date.now();
    this.beat(now);
    this.serveSnapshotRequests(now);
    for (const p of this.assignment) {
      if (!this.owned.has(p) && !this.lock(p).busy) this.restoreInBackground(p);
    }
    if (now - this.lastEndOffsetsAt >= 5_000 && this.admin) {
      this.lastEndOffsetsAt = now;
      this.admin
        .endOffsets(this.o.config.kafka.topic)
        .then((ends) => {
          for (const o of this.owned.values()) {
            const end = ends.get(o.partition);
            if (end !== undefined) o.highWatermark = Math.max(o.highWatermark, end);
            this.updateLag(o);
          }
        })
        .catch((err: Error) => this.log.debug({ err: err.message }, 'end offsets unavailable'));
    }
    for (const o of this.owned.values()) {
      const lock = this.lock(o.partition);
      if (lock.busy) continue;
      this.reseekIfStuck(o, now);
      void lock
        .run(() => this.idleWork(o))
        .catch((err: Error) => {
          if (!(err instanceof StoppedError)) this.log.error({ partition: o.partition, err: err.message }, 'timer work failed; the partition restarts from its checkpoint');
        });
    }
  }

  private async idleWork(o: Owned<S>): Promise<void> {
    if (this.stopping || this.owned.get(o.partition) !== o) return;
    const now = Date.now();
    const caughtUp = o.highWatermark >= 0 && o.nextOffset >= o.highWatermark;
    if (caughtUp && o.idleBase === undefined && this.o.job.watermark(o.state) >= 0) {
      // Restored while the topic is quiet: the idle clock starts now.
      o.idleBase = { watermark: this.o.job.watermark(o.state), wall: now };
    }
    const idleFor = o.idleBase ? now - o.idleBase.wall : 0;
    if (caughtUp && o.idleBase && idleFor >= (this.o.idleAfterMs ?? 1_000)) {
      const outputs = await this.o.job.advanceTo(o.state, o.idleBase.watermark + idleFor);
      if (outputs.writes.length || outputs.alerts.length) {
        try {
          await this.deliver(outputs);
        } catch (err) {
          this.drop(o.partition);
          throw err;
        }
        o.dirty = true;
      }
    }
    this.maybeCheckpoint(o, now);
    void this.commitDurable(o);
  }

  /** Finishes the batch in hand, checkpoints every partition, commits, leaves the group. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const o of [...this.owned.values()]) {
      await this.lock(o.partition).run(async () => {
        await this.checkpoints.settled(o.partition);
        if (o.dirty) this.checkpointNow(o);
      });
    }
    // Not past a checkpoint that could not be written: a member without any checkpoint starts from the committed offset.
    const offsets = [...this.owned.values()].filter((o) => o.nextOffset >= 0 && !o.checkpointError).map((o) => ({ partition: o.partition, offset: o.nextOffset }));
    await this.consumer?.commit(offsets).catch((err: Error) => this.log.warn({ err: err.message }, 'final offset commit failed (checkpoints are saved)'));
    await this.consumer?.stop();
    leave(this.o.config.checkpoint.dir, this.memberId);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    this.log.info({ partitions: [...this.owned.keys()], positions: Object.fromEntries(this.positions()) }, 'worker stopped: checkpoints written, left the group');
    for (const p of [...this.owned.keys()]) this.drop(p);
  }
}
