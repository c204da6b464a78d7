/**
 * The stream runtime on Kafka: one consumer group member whose partitions each
 * carry their own job state. State and the next offset are checkpointed
 * together, and a partition's position is always taken from its checkpoint
 * (Kafka's committed offsets only follow), so a crash or a rebalance replays
 * from a point that matches the state exactly: nothing lost, nothing counted
 * twice. This class wires the duties together; each has its own module:
 * ownership and restore (partitions.ts), processing (processing.ts), delivery
 * with retry (delivery.ts), checkpoint scheduling and failures (checkpointing.ts),
 * the idle clock (idle-clock.ts), dead letters (dead-letters.ts), the heartbeat
 * and snapshot requests on the checkpoint volume (state-requests.ts); shutdown
 * is stop().
 */
import type { Logger } from 'pino';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import { GroupConsumer, RecordProducer, TopicAdmin, type ConsumedRecord, type KafkaConnectionOptions, type PartitionBatch } from '../../lib/kafka/client.js';
import { CheckpointStore } from './checkpoint.js';
import { Checkpointing } from './checkpointing.js';
import { deadLetter, DeadLetterJournal, DeadLetterOutbox } from './dead-letters.js';
import { Delivery } from './delivery.js';
import { IdleClock } from './idle-clock.js';
import type { OutputStage, PartitionState, StreamJob } from './job.js';
import { EventPacer } from './busy.js';
import type { WorkerMetrics } from './metrics.js';
import { Partitions, type Owned } from './partitions.js';
import { DEFAULT_MAX_FUTURE_SKEW_SECONDS, parseRecords, Processor } from './processing.js';
import { StoppedError } from './retry.js';
import type { ResultSink } from './sink.js';
import { defaultMemberId, StateRequests } from './state-requests.js';
import { Stalls, type Stall } from './stalls.js';
import { KafkaErrorCodes, kafkaErrorCode } from '../../lib/kafka/errors.js';

/** What /status tells of a worker (the supervisor of `sluice run` and the operator read it). */
export interface WorkerStatus {
  ready: boolean;
  detail: string;
  stalls: Stall[];
  partitions: Array<{ partition: number; nextOffset: number; highWatermark: number; lastCheckpointAt: string; pendingDeadLetters: number }>;
}

export { DLQ_HEADERS } from './dead-letters.js';

/** How long shutdown waits for the last offset commit. */
const FINAL_COMMIT_TIMEOUT_MS = 5_000;

export interface KafkaWorkerOptions<S extends PartitionState, E> {
  config: WorkerConfig;
  connection: KafkaConnectionOptions;
  job: StreamJob<S, E>;
  sink: ResultSink;
  /** Delivers the job's own outputs (cart: alerts); none for a job that only writes user hashes. */
  output?: OutputStage<E>;
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

export class KafkaWorker<S extends PartitionState, E = unknown> {
  private consumer: GroupConsumer | undefined;
  private producer: RecordProducer | undefined;
  readonly stalls: Stalls;
  private readonly outbox: DeadLetterOutbox;
  private readonly connection: KafkaConnectionOptions;
  private lastFlushAt = 0;
  private admin: TopicAdmin | undefined;
  private readonly partitions: Partitions<S>;
  private readonly checkpointing: Checkpointing<S>;
  private readonly processor: Processor<S, E>;
  private readonly delivery: Delivery<E>;
  private readonly idle: IdleClock<S>;
  private readonly requests: StateRequests<S>;
  private readonly maxFutureSkewMs: number;
  private stopping = false;
  private fatal: Error | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private lastEndOffsetsAt = 0;
  private readonly warnedAhead = new Set<number>();
  private readonly checkpointDir: string;
  private readonly log: Logger;

  constructor(private readonly o: KafkaWorkerOptions<S, E>) {
    const k = o.config.kafka;
    const store = new CheckpointStore(o.config.checkpoint.dir, k.consumerGroup, k.topic, o.job);
    this.checkpointDir = store.dir;
    this.log = o.logger;
    const journal = new DeadLetterJournal(store.dir);
    this.partitions = new Partitions({
      job: o.job,
      checkpoints: store,
      pendingDeadLetters: (p, nextOffset) => journal.load(p, nextOffset),
      seek: (p, offset) => this.consumer?.seek(p, offset),
      metrics: o.metrics,
      logger: o.logger,
      onIncompatible: (partition, err) => {
        if (this.fatal) return;
        this.fatal = err;
        this.log.fatal({ partition, code: err.code }, err.message);
        this.o.onFatal?.(err);
      },
    });
    this.checkpointing = new Checkpointing({
      store,
      intervalMs: o.config.checkpoint.intervalSeconds * 1000,
      holds: (owned) => this.partitions.holds(owned),
      commit: (offsets) => this.consumer?.commit(offsets),
      metrics: o.metrics,
      logger: o.logger,
    });
    this.stalls = new Stalls(o.metrics.stalled, o.logger);
    // kafkajs' connection errors become one "waiting for Kafka" line (and the gauge), not one ERROR per attempt.
    this.connection = { ...o.connection, onConnectionError: (message) => this.stalls.set('kafka', 'KafkaUnreachable', message) };
    this.delivery = new Delivery({ sink: o.sink, output: o.output, metrics: o.metrics, logger: o.logger, shouldStop: () => this.stopping, stalls: this.stalls });
    this.outbox = new DeadLetterOutbox({
      send: (records) => this.producer!.send(k.deadLetterTopic, records),
      onFailure: (err) => this.stalls.set('dlq', kafkaErrorCode(err) === KafkaErrorCodes.TOPIC_NOT_FOUND ? 'DeadLetterTopicMissing' : 'DeadLetterTopicUnwritable', err.message),
      onSuccess: () => this.stalls.clear('dlq'),
      onSent: (n) => o.metrics.deadLetters.inc(n),
      stalled: () => this.stalls.has('dlq'),
      journal,
    });
    const throttle = o.config.throttle;
    this.processor = new Processor(o.job, this.delivery, o.metrics, throttle ? new EventPacer(throttle.eventsPerSecond) : undefined);
    this.idle = new IdleClock(o.job, o.idleAfterMs);
    this.requests = new StateRequests({ root: o.config.checkpoint.dir, topic: k.topic, memberId: o.memberId ?? defaultMemberId(), job: o.job, partitions: this.partitions, logger: o.logger });
    this.maxFutureSkewMs = (o.config.eventTime.maxFutureSkewSeconds ?? DEFAULT_MAX_FUTURE_SKEW_SECONDS) * 1000;
  }

  async start(): Promise<void> {
    const k = this.o.config.kafka;
    // Dead letters get a quick producer: when their topic cannot be written they wait in the journal beside the checkpoint instead.
    this.producer = await RecordProducer.connect({ ...this.connection, retries: 1 });
    this.admin = await TopicAdmin.connect(this.connection);
    this.stalls.clear('kafka');
    await this.ensureDeadLetterTopic();
    if (!(await this.waitForInputTopic())) return;
    const sessionTimeoutMs = k.sessionTimeoutSeconds * 1000;
    // Held before it joins: the first assignment's restores seek from onAssignment, before run() resolves.
    this.consumer = GroupConsumer.create(
      this.connection,
      {
        groupId: k.consumerGroup,
        topic: k.topic,
        startFrom: k.startFrom,
        sessionTimeoutMs,
        heartbeatIntervalMs: Math.min(3_000, sessionTimeoutMs / 5),
        // Throttled: batches of about a second of events, not a megabyte that takes minutes.
        ...(this.o.config.throttle ? { maxBytesPerPartition: Math.max(16_384, Math.ceil(this.o.config.throttle.eventsPerSecond) * 300) } : {}),
      },
      {
        onAssignment: (partitions) => {
          this.stalls.clear('kafka');
          this.partitions.assign(partitions);
        },
        onRebalancing: () => this.onRebalancing(),
        onBatch: (batch) => this.onBatch(batch),
        onCrash: (err) => {
          this.fatal = err;
          this.log.fatal({ err: err.message }, 'kafka consumer stopped for good');
          this.o.onFatal?.(err);
        },
      },
    );
    await this.consumer.run();
    this.ticker = setInterval(() => this.tick(), this.o.tickMs ?? 500);
    this.ticker.unref();
  }

  /**
   * A missing input topic is waited for (said once, as a stall with reason
   * TopicNotFound), never created by subscribing: its partition count is the
   * job's parallelism limit, which someone should choose. False when stopped
   * meanwhile.
   */
  private async waitForInputTopic(): Promise<boolean> {
    const { topic } = this.o.config.kafka;
    for (;;) {
      if (this.stopping) return false;
      try {
        if (await this.admin!.topicExists(topic)) {
          this.stalls.clear('kafka');
          return true;
        }
        this.stalls.set('kafka', 'TopicNotFound', `input topic ${topic} does not exist: create it with the partition count you want (sluice produce creates it with 6); waiting for it`);
      } catch (err) {
        this.stalls.set('kafka', 'KafkaUnreachable', (err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }

  /**
   * The dead-letter topic is created when it is missing and the broker lets
   * this worker create it; otherwise the worker says so (a stall on the DLQ)
   * and malformed events wait in the journal beside the checkpoint until it exists.
   */
  private async ensureDeadLetterTopic(): Promise<void> {
    const dlq = this.o.config.kafka.deadLetterTopic;
    try {
      if (await this.admin!.topicExists(dlq)) return;
      await this.admin!.createTopic(dlq, 1);
      this.log.info({ deadLetterTopic: dlq }, `created the dead-letter topic ${dlq} (1 partition)`);
    } catch (err) {
      const message = `dead-letter topic ${dlq} does not exist and cannot be created: ${(err as Error).message}; malformed events are kept beside the checkpoint until it exists`;
      this.stalls.set('dlq', 'DeadLetterTopicMissing', message);
    }
  }

  readiness(): { ready: boolean; detail: string } {
    const r = this.readinessOfPartitions();
    const stalls = this.stalls.describe();
    return stalls ? { ready: r.ready, detail: `${r.detail}; ${stalls}` } : r;
  }

  private readinessOfPartitions(): { ready: boolean; detail: string } {
    if (this.fatal) return { ready: false, detail: `kafka consumer failed: ${this.fatal.message}` };
    if (this.stopping) return { ready: false, detail: 'stopping' };
    if (!this.partitions.joined) return { ready: false, detail: `joining consumer group ${this.o.config.kafka.consumerGroup}` };
    const failing = this.checkpointing.failingDetail(this.partitions.all());
    if (failing) return { ready: false, detail: failing };
    const pending = this.partitions.pendingDetail();
    if (pending) return { ready: false, detail: pending };
    return { ready: true, detail: `ready: partitions [${this.partitions.assignment.join(',')}] restored` };
  }

  /** Readiness, what the worker waits on, and each owned partition's position: the /status document. */
  status(): WorkerStatus {
    const r = this.readiness();
    return {
      ...r,
      stalls: this.stalls.list(),
      partitions: this.partitions.all().map((o) => ({
        partition: o.partition,
        nextOffset: o.nextOffset,
        highWatermark: o.highWatermark,
        lastCheckpointAt: new Date(o.lastCheckpointAt).toISOString(),
        pendingDeadLetters: o.deadLetters.length,
      })),
    };
  }

  /** Partitions owned now and the offset each resumes from, for tests and status. */
  positions(): Map<number, number> {
    return this.partitions.positions();
  }

  /** Synchronous on purpose (see CheckpointStore.saveNow): runs before this member rejoins the group. */
  private onRebalancing(): void {
    for (const o of this.partitions.all()) {
      // A checkpoint still in flight may not be durable before the partition moves: saveNow replaces it.
      if ((o.dirty || this.checkpointing.inFlight(o.partition)) && !this.partitions.lock(o.partition).busy) this.checkpointing.save(o);
    }
  }

  private async onBatch(batch: PartitionBatch): Promise<void> {
    const p = batch.partition;
    await this.partitions.lock(p).run(async () => {
      if (this.stopping || !this.partitions.assignment.includes(p)) return;
      const o = this.partitions.ensureOwned(p);
      o.lastBatchAt = Date.now();
      if (batch.isStale()) return;
      const records = await this.fromCheckpoint(o, batch.records);
      if (records === undefined || batch.isStale() || !this.partitions.holds(o)) return;
      o.highWatermark = Math.max(o.highWatermark, batch.highWatermark);
      if (records.length > 0 && !(await this.processRecords(o, records, batch.heartbeat))) return;
      batch.consumed();
      // Revoked while the batch was delivered: the new owner reports its lag.
      if (this.partitions.holds(o)) this.updateLag(o);
    });
  }

  /**
   * The records of a batch the state has not seen: those before the
   * checkpoint's offset are trimmed. A batch that starts after it means the
   * consumer is not where the checkpoint is (the group's committed offset can
   * be ahead of a checkpoint restored from an older point): it is sought back,
   * as often as that happens, and the batch dropped for the one the seek
   * fetches (undefined). Records are passed over only when the broker no
   * longer has them (deleted by retention), and the log says so.
   */
  private async fromCheckpoint(o: Owned<S>, records: ConsumedRecord[]): Promise<ConsumedRecord[] | undefined> {
    if (o.nextOffset < 0 || records.length === 0) return records;
    if (records[0].offset > o.nextOffset) {
      const logStart = await this.logStart(o.partition);
      if (logStart !== undefined && logStart > o.nextOffset) {
        this.log.warn(
          { partition: o.partition, checkpointOffset: o.nextOffset, logStart, got: records[0].offset },
          `records ${o.nextOffset}..${logStart - 1} of partition ${o.partition} were deleted by the topic's retention before this job read them: continuing from ${logStart}`,
        );
        o.nextOffset = logStart;
      }
      if (records[0].offset > o.nextOffset) {
        if (o.seekedTo !== o.nextOffset) this.log.info({ partition: o.partition, nextOffset: o.nextOffset, got: records[0].offset }, 'the consumer is ahead of the checkpoint: seeking back to it');
        this.consumer?.seek(o.partition, o.nextOffset);
        o.seekedTo = o.nextOffset;
        return undefined;
      }
    }
    return records.filter((r) => r.offset >= o.nextOffset);
  }

  /** The partition's first offset at the broker; undefined when it cannot be asked (then nothing is passed over). */
  private async logStart(partition: number): Promise<number | undefined> {
    try {
      return (await this.admin?.startOffsets(this.o.config.kafka.topic))?.get(partition);
    } catch (err) {
      this.log.debug({ partition, err: (err as Error).message }, 'log start offset unavailable');
      return undefined;
    }
  }

  /** Returns false when the batch was given up (stopping): its records will be read again. Counted as busy time. */
  private processRecords(o: Owned<S>, records: ConsumedRecord[], heartbeat: () => Promise<void>): Promise<boolean> {
    return this.o.metrics.busy.time(() => this.processBatch(o, records, heartbeat));
  }

  private async processBatch(o: Owned<S>, records: ConsumedRecord[], heartbeat: () => Promise<void>): Promise<boolean> {
    const { topic, deadLetterTopic } = this.o.config.kafka;
    const parsed = parseRecords(records, { now: Date.now(), maxFutureSkewMs: this.maxFutureSkewMs });
    const dead = parsed.invalid.map(({ record, reason }) => {
      this.log.debug({ partition: o.partition, offset: record.offset, reason, deadLetterTopic }, 'malformed event to the dead-letter topic');
      return deadLetter(this.o.config.job.name, topic, o.partition, record, reason);
    });
    try {
      await this.processor.process(o.state, parsed.events, {
        consumed: records.length,
        between: heartbeat,
        // Sent, or kept with the state when the topic cannot take them: never a wait for good events.
        beforeDelivery: dead.length ? () => this.outbox.deliver(o.partition, o.deadLetters, dead) : undefined,
      });
    } catch (err) {
      // The state has moved past its checkpoint but the results did not all land: forget it, restore and replay.
      this.partitions.drop(o.partition);
      if (err instanceof StoppedError) return false;
      throw err;
    }
    const now = Date.now();
    o.nextOffset = records[records.length - 1].offset + 1;
    // Progress was made: a later gap deserves its own seek.
    o.seekedTo = undefined;
    o.dirty = true;
    this.idle.reset(o, now);
    this.stalls.clear('kafka');
    this.countPending();
    for (const t of parsed.timestamps) this.o.metrics.eventToScore.observe(Math.max(0, now - t) / 1000);
    this.checkpointing.maybe(o, now);
    return true;
  }

  private updateLag(o: Owned<S>): void {
    if (o.highWatermark >= 0 && o.nextOffset > o.highWatermark && !this.warnedAhead.has(o.partition)) {
      // Only a topic deleted and created again does this: its new records are skipped until they pass the checkpoint.
      this.warnedAhead.add(o.partition);
      this.log.error(
        { partition: o.partition, checkpointOffset: o.nextOffset, topicEnd: o.highWatermark, dir: this.checkpointDir },
        'checkpoint is ahead of the end of the partition (was the topic recreated?): move the checkpoint away to start the partition afresh',
      );
    }
    // Only what this member holds now: a batch or a lag read that ends after a revocation reports nothing.
    if (!this.partitions.holds(o) || !this.partitions.assignment.includes(o.partition)) return;
    if (o.nextOffset >= 0) this.o.metrics.position.set({ partition: String(o.partition) }, o.nextOffset);
    if (o.highWatermark >= 0 && o.nextOffset >= 0) {
      this.o.metrics.lag.set({ partition: String(o.partition) }, Math.max(0, o.highWatermark - o.nextOffset));
    }
  }

  /** Periodic work: heartbeat and snapshot requests, restore dropped partitions, learn end offsets, move idle event time, checkpoint, commit. */
  private tick(): void {
    if (this.stopping || this.fatal) return;
    const now = Date.now();
    this.requests.tick(now);
    this.partitions.restoreMissing();
    if (now - this.lastEndOffsetsAt >= 5_000 && this.admin) {
      this.lastEndOffsetsAt = now;
      this.admin
        .endOffsets(this.o.config.kafka.topic)
        .then((ends) => {
          this.stalls.clear('kafka');
          for (const o of this.partitions.all()) {
            const end = ends.get(o.partition);
            if (end !== undefined) o.highWatermark = Math.max(o.highWatermark, end);
            this.updateLag(o);
          }
        })
        .catch((err: Error) => this.log.debug({ err: err.message }, 'end offsets unavailable'));
    }
    const flush = now - this.lastFlushAt >= 5_000;
    if (flush) this.lastFlushAt = now;
    for (const o of this.partitions.all()) {
      const lock = this.partitions.lock(o.partition);
      if (lock.busy) continue;
      this.partitions.reseekIfStuck(o, now);
      void lock
        .run(async () => {
          if (flush) await this.flushDeadLetters(o);
          await this.idleWork(o);
        })
        .catch((err: Error) => {
          if (!(err instanceof StoppedError)) this.log.error({ partition: o.partition, err: err.message }, 'timer work failed; the partition restarts from its checkpoint');
        });
    }
  }

  /** Dead letters kept while the dead-letter topic could not be written: sent once it can be (the journal then goes). */
  private async flushDeadLetters(o: Owned<S>): Promise<void> {
    if (o.deadLetters.length === 0 || !this.partitions.holds(o)) return;
    if (this.stalls.list().some((st) => st.reason === 'DeadLetterTopicMissing')) await this.ensureDeadLetterTopic();
    if (await this.outbox.flush(o.partition, o.deadLetters)) {
      this.log.info({ partition: o.partition }, 'dead letters kept beside the checkpoint are now in the dead-letter topic');
    }
    this.countPending();
  }

  private countPending(): void {
    this.o.metrics.deadLettersPending.set(this.partitions.all().reduce((n, o) => n + o.deadLetters.length, 0));
  }

  private async idleWork(o: Owned<S>): Promise<void> {
    if (this.stopping || !this.partitions.holds(o)) return;
    const now = Date.now();
    const watermark = this.idle.due(o, now);
    if (watermark !== undefined) {
      try {
        if (await this.processor.advance(o.state, watermark)) o.dirty = true;
      } catch (err) {
        this.partitions.drop(o.partition);
        throw err;
      }
    }
    this.checkpointing.maybe(o, now);
    void this.checkpointing.commitDurable(o);
  }

  /** Shutdown: finishes the batch in hand, checkpoints every partition, commits, leaves the group. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const o of this.partitions.all()) {
      await this.partitions.lock(o.partition).run(async () => {
        await this.checkpointing.settled(o.partition);
        if (o.dirty) this.checkpointing.save(o);
      });
    }
    // Not past a checkpoint that could not be written: a member without any checkpoint starts from the committed offset.
    const offsets = this.partitions
      .all()
      .filter((o) => o.nextOffset >= 0 && !o.checkpointError)
      .map((o) => ({ partition: o.partition, offset: o.nextOffset }));
    // Bounded: the checkpoints are saved and are what counts; a commit kafkajs keeps retrying (the topic
    // deleted, the broker gone: 32 s measured) must not eat the pod's termination grace period.
    const commit = this.consumer?.commit(offsets).then(
      () => true,
      (err: Error) => {
        this.log.warn({ err: err.message }, 'final offset commit failed (checkpoints are saved)');
        return true;
      },
    );
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), FINAL_COMMIT_TIMEOUT_MS).unref());
    if (!(await Promise.race([commit ?? true, timeout]))) {
      this.log.warn({ timeoutMs: FINAL_COMMIT_TIMEOUT_MS }, 'final offset commit did not finish: leaving without it (checkpoints are saved; the next owner resumes from them)');
    }
    await this.consumer?.stop();
    this.requests.leave();
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    this.log.info({ partitions: this.partitions.all().map((o) => o.partition), positions: Object.fromEntries(this.positions()) }, 'worker stopped: checkpoints written, left the group');
    this.partitions.dropAll();
  }
}
