/**
 * The one module that talks to kafkajs. kafkajs is unmaintained: everything
 * else in Sluice sees only the types declared here (plain offsets as numbers,
 * Buffers, partitions as numbers), so the client can be swapped for another
 * library by rewriting this file alone, and `bench/workers.bench.ts` measures
 * the path through it.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, KafkaConfig, LogEntry, Producer, SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { KafkaError, KafkaErrorCodes, toKafkaError } from './errors.js';
import type { WorkerConfig } from '../worker-config/config.js';

const { Kafka, Partitioners, logLevel: KafkaLogLevel } = kafkajs;

/** How to reach a Kafka cluster: WorkerConfig.kafka plus the credentials from the environment. */
export interface KafkaConnectionOptions {
  brokers: string[];
  clientId?: string;
  tls?: WorkerConfig['kafka']['tls'];
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** Defaults to 10 s; lower it for quick probes. */
  connectionTimeoutMs?: number;
  /** kafkajs' own log lines go here (as JSON through pino); silent when absent. */
  logger?: Logger;
  /**
   * Called with kafkajs' connection errors (broker down, refused, DNS...) instead
   * of logging each: the worker says once that it waits for Kafka. They are
   * logged at debug level.
   */
  onConnectionError?: (message: string) => void;
  /** Retries of each request (default 8, up to 10 s apart); fewer for a quick attempt that has a fallback. */
  retries?: number;
}

export { KafkaError, KafkaErrorCodes, kafkaErrorCode, type KafkaErrorCode } from './errors.js';

export interface KafkaCredentials {
  username?: string;
  password?: string;
}

/** Builds connection options from the worker config and the SASL credentials (env KAFKA_SASL_USERNAME/PASSWORD). */
export function kafkaConnection(
  kafka: WorkerConfig['kafka'],
  credentials: KafkaCredentials = {},
  logger?: Logger,
): KafkaConnectionOptions {
  const options: KafkaConnectionOptions = { brokers: kafka.bootstrapServers, clientId: kafka.clientId, tls: kafka.tls, logger };
  if (kafka.sasl) {
    if (!credentials.username || credentials.password === undefined) {
      throw new Error(
        `kafka.sasl.mechanism is '${kafka.sasl.mechanism}' but KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD are not set`,
      );
    }
    options.sasl = { mechanism: kafka.sasl.mechanism, username: credentials.username, password: credentials.password };
  }
  return options;
}

function tlsOptions(tls: KafkaConnectionOptions['tls']): ConnectionOptions | boolean | undefined {
  if (!tls?.enabled) return undefined;
  const read = (file: string | undefined, field: string): string | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`kafka.tls.${field}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const ca = read(tls.caFile, 'caFile');
  const cert = read(tls.certFile, 'certFile');
  const key = read(tls.keyFile, 'keyFile');
  if (!ca && !cert && !key && !tls.insecureSkipVerify) return true;
  return { ca, cert, key, rejectUnauthorized: !tls.insecureSkipVerify };
}

/** kafkajs namespaces whose errors are about reaching a broker: one stall line, not one ERROR per attempt. */
const CONNECTION_NAMESPACES = new Set(['Connection', 'BrokerPool', 'ConnectionPool']);

/**
 * kafkajs logs its normal life at ERROR level: a rebalance ("The group is
 * rebalancing, re-joining"), each failed connection attempt and each retry.
 * Those are not errors of the job: rebalances go to info, connection errors to
 * `onConnectionError` (and debug), retries that will be retried to debug.
 */
function logCreator(options: KafkaConnectionOptions): KafkaConfig['logCreator'] {
  const { logger } = options;
  return () => (entry: LogEntry) => {
    if (!logger) return;
    const { message, ...extra } = entry.log;
    const fields = { kafka: entry.namespace, ...extra };
    if (entry.level > KafkaLogLevel.WARN) {
      logger.debug(fields, message);
      return;
    }
    const text = typeof extra.error === 'string' ? `${message}: ${extra.error}` : message;
    if (/rebalanc/i.test(text)) {
      logger.info(fields, message);
      return;
    }
    if (/Connection (error|timeout)|Failed to connect|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|Closed connection/i.test(text)) {
      logger.debug(fields, message);
      options.onConnectionError?.(text);
      return;
    }
    // A broker's answer to one request (a protocol error) on a connection: kafkajs retries it.
    if (CONNECTION_NAMESPACES.has(entry.namespace) || extra.retryCount !== undefined || extra.retryTime !== undefined) {
      logger.debug(fields, message);
      return;
    }
    if (entry.level === KafkaLogLevel.ERROR) logger.error(fields, message);
    else logger.warn(fields, message);
  };
}

function client(options: KafkaConnectionOptions): InstanceType<typeof Kafka> {
  if (options.brokers.length === 0) throw new Error('kafka.bootstrapServers is empty: name at least one broker host:port');
  return new Kafka({
    brokers: options.brokers,
    clientId: options.clientId ?? 'sluice',
    ssl: tlsOptions(options.tls),
    sasl: options.sasl as SASLOptions | undefined,
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    logLevel: options.logger ? KafkaLogLevel.WARN : KafkaLogLevel.NOTHING,
    logCreator: logCreator(options),
    retry: { retries: options.retries ?? 8, initialRetryTime: 200, maxRetryTime: options.retries !== undefined ? 1_000 : 10_000 },
  });
}

async function withAdmin<T>(options: KafkaConnectionOptions, use: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client(options).admin();
  await admin.connect();
  try {
    return await use(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Number of partitions of `topic`. Throws a KafkaError naming the topic:
 * code TOPIC_NOT_FOUND when it does not exist, UNREACHABLE when no broker answers.
 */
export async function topicPartitionCount(options: KafkaConnectionOptions, topic: string): Promise<number> {
  const context = `cannot read partitions of Kafka topic '${topic}' from ${options.brokers.join(',')}`;
  try {
    return await withAdmin(options, async (admin) => {
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        const found = meta.topics.find((t) => t.name === topic);
        if (!found) throw new KafkaError(KafkaErrorCodes.TOPIC_NOT_FOUND, `${context}: topic ${topic} not found`);
        return found.partitions.length;
      } catch (err) {
        throw toKafkaError(err, context);
      }
    });
  } catch (err) {
    // Connecting failed: the client's own message says to what.
    throw toKafkaError(err);
  }
}

/** Creates the topic if it does not exist yet; returns false when it already existed. */
export async function createTopic(
  options: KafkaConnectionOptions,
  topic: string,
  partitions: number,
  replicationFactor = 1,
): Promise<boolean> {
  return withAdmin(options, (admin) => createTopicWithLeaders(admin, { topic, numPartitions: partitions, replicationFactor }));
}

/**
 * Creates a topic and waits until every partition has a leader. kafkajs's own wait (`waitForLeaders`)
 * gives up at once when a broker's metadata does not know the new topic yet ("This server does not host
 * this topic-partition"), which a busy broker says for a moment after the creation: ask again instead.
 */
async function createTopicWithLeaders(admin: Admin, spec: { topic: string; numPartitions: number; replicationFactor?: number }): Promise<boolean> {
  const created = await admin.createTopics({ topics: [spec], waitForLeaders: false });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [spec.topic] })).topics;
      if (meta && meta.partitions.length > 0 && meta.partitions.every((p) => p.leader >= 0)) return created;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`topic ${spec.topic} has partitions without a leader 30 s after its creation`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function deleteTopics(options: KafkaConnectionOptions, topics: string[]): Promise<void> {
  await withAdmin(options, (admin) => admin.deleteTopics({ topics }));
}

/** The next offset of every partition (the high watermark), for lag and for "has everything been consumed". */
export async function topicEndOffsets(options: KafkaConnectionOptions, topic: string): Promise<Map<number, number>> {
  return withAdmin(options, async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  });
}

/** Offsets committed by a consumer group (-1 where nothing is committed). */
export async function groupCommittedOffsets(
  options: KafkaConnectionOptions,
  groupId: string,
  topic: string,
): Promise<Map<number, number>> {
  return withAdmin(options, async (admin) => {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((entry?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  });
}

/** Where to put a partition's position: its first offset, its end, or the first record at or after a time. */
export type OffsetPoint = { at: 'earliest' } | { at: 'latest' } | { at: 'timestamp'; epochMs: number };

/**
 * The offset of every partition of `topic` at `point`: the log start (earliest),
 * the high watermark (latest), or the first record whose timestamp is at or
 * after the time (the end of the partition when there is none).
 */
export async function topicOffsetsAt(options: KafkaConnectionOptions, topic: string, point: OffsetPoint): Promise<Map<number, number>> {
  return withAdmin(options, async (admin) => {
    const bounds = await admin.fetchTopicOffsets(topic);
    const out = new Map(bounds.map((o) => [o.partition, Number(point.at === 'earliest' ? o.low : o.high)]));
    if (point.at !== 'timestamp') return out;
    for (const o of await admin.fetchTopicOffsetsByTimestamp(topic, point.epochMs)) {
      const offset = Number(o.offset);
      // -1: no record at or after the time; the partition's end is where a replay from then starts.
      if (offset >= 0) out.set(o.partition, offset);
    }
    return out;
  });
}

/**
 * Sets a consumer group's committed offsets (the group must have no members,
 * as `kafka-consumer-groups --reset-offsets` needs).
 */
export async function setGroupOffsets(options: KafkaConnectionOptions, groupId: string, topic: string, offsets: Map<number, number>): Promise<void> {
  if (offsets.size === 0) return;
  await withAdmin(options, (admin) =>
    admin.setOffsets({ groupId, topic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })) }),
  );
}

/** Deletes every record before `offsets` (what retention does), for tests and tools. */
export async function deleteRecordsBefore(options: KafkaConnectionOptions, topic: string, offsets: Map<number, number>): Promise<void> {
  await withAdmin(options, async (admin) => {
    // kafkajs finds the partitions' leaders in metadata it only has once asked for.
    await admin.fetchTopicMetadata({ topics: [topic] });
    await admin.deleteTopicRecords({ topic, partitions: [...offsets].map(([partition, offset]) => ({ partition, offset: String(offset) })) });
  });
}

export interface RecordHeaders {
  [name: string]: string;
}

export interface ConsumedRecord {
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Broker or producer timestamp, epoch ms. */
  timestamp: number;
  headers: RecordHeaders;
}

export interface OutgoingRecord {
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: RecordHeaders;
  partition?: number;
}

export interface PartitionBatch {
  topic: string;
  partition: number;
  records: ConsumedRecord[];
  /** The partition's next offset at the broker when this batch was fetched. */
  highWatermark: number;
  /** Keeps the group membership alive during a long batch; throws when the group is rebalancing. */
  heartbeat(): Promise<void>;
  /** True when a seek made this batch obsolete. */
  isStale(): boolean;
  /** False once stop() was called: finish quickly. */
  isRunning(): boolean;
  /**
   * Marks the whole batch as consumed, so the next fetch continues after it.
   * A batch not marked is fetched again (or from wherever a seek moved to).
   */
  consumed(): void;
}

export interface GroupConsumerHandlers {
  /**
   * Called after every (re)join with the full assignment of this member, before
   * any batch of a newly assigned partition is handed out is NOT guaranteed by
   * kafkajs: onBatch must cope with a partition it has not restored yet.
   */
  onAssignment(partitions: number[]): void;
  /**
   * Called synchronously when the group starts rebalancing, before this member
   * rejoins: the last chance to save the state of partitions that may move.
   */
  onRebalancing(): void;
  onBatch(batch: PartitionBatch): Promise<void>;
  /** The consumer stopped for good (kafkajs gave up retrying). */
  onCrash(error: Error): void;
}

export interface GroupConsumerOptions {
  groupId: string;
  topic: string;
  startFrom: 'earliest' | 'latest';
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Upper bound of one fetch per partition; bounds the batch size. */
  maxBytesPerPartition?: number;
  maxWaitTimeMs?: number;
}

function toRecord(m: EachBatchPayload['batch']['messages'][number]): ConsumedRecord {
  const headers: RecordHeaders = {};
  for (const [name, value] of Object.entries(m.headers ?? {})) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.map(String).join(',') : String(value);
  }
  return { offset: Number(m.offset), key: m.key, value: m.value, timestamp: Number(m.timestamp), headers };
}

/**
 * A consumer group member on one topic with offsets under the caller's control:
 * nothing is committed automatically; commit() stores what the caller has
 * durably checkpointed; seek() moves a partition.
 */
export class GroupConsumer {
  private readonly topic: string;

  private constructor(
    private readonly consumer: Consumer,
    private readonly options: GroupConsumerOptions,
    private readonly handlers: GroupConsumerHandlers,
  ) {
    this.topic = options.topic;
  }

  /** create() then run(). */
  static async start(connection: KafkaConnectionOptions, options: GroupConsumerOptions, handlers: GroupConsumerHandlers): Promise<GroupConsumer> {
    const self = GroupConsumer.create(connection, options, handlers);
    await self.run();
    return self;
  }

  /**
   * The member, not yet in the group. Its first assignment is handed out
   * before run() resolves, so a caller that seeks from onAssignment must hold
   * this object first: a seek issued then is what keeps a restored partition
   * from resuming at the group's committed offset instead of its checkpoint.
   */
  static create(connection: KafkaConnectionOptions, options: GroupConsumerOptions, handlers: GroupConsumerHandlers): GroupConsumer {
    const consumer = client(connection).consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: options.heartbeatIntervalMs ?? 3_000,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 500,
      // A topic nobody created is not created by subscribing to it (with a partition count nobody chose).
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      handlers.onAssignment([...(e.payload.memberAssignment[options.topic] ?? [])].sort((a, b) => a - b));
    });
    consumer.on(consumer.events.REBALANCING, () => handlers.onRebalancing());
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) handlers.onCrash(e.payload.error);
    });
    return new GroupConsumer(consumer, options, handlers);
  }

  /** Connects, subscribes and joins the group; resolves once the first assignment was handed out. */
  async run(): Promise<void> {
    const { consumer, options, handlers } = this;
    await consumer.connect();
    await consumer.subscribe({ topics: [options.topic], fromBeginning: options.startFrom === 'earliest' });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, heartbeat, isStale, isRunning, resolveOffset }) => {
        await handlers.onBatch({
          topic: batch.topic,
          partition: batch.partition,
          records: batch.messages.map(toRecord),
          highWatermark: Number(batch.highWatermark),
          heartbeat,
          isStale,
          isRunning,
          consumed: () => resolveOffset(batch.lastOffset()),
        });
      },
    });
  }

  /** Moves the partition's fetch position; the batch in hand becomes stale. */
  seek(partition: number, offset: number): void {
    this.consumer.seek({ topic: this.topic, partition, offset: String(offset) });
  }

  /** Records `offset` (the next offset to read) of each partition as the group's committed position. */
  async commit(offsets: Array<{ partition: number; offset: number }>): Promise<void> {
    if (offsets.length === 0) return;
    await this.consumer.commitOffsets(
      offsets.map((o) => ({ topic: this.topic, partition: o.partition, offset: String(o.offset) })),
    );
  }

  pause(partitions: number[]): void {
    if (partitions.length) this.consumer.pause([{ topic: this.topic, partitions }]);
  }

  resume(partitions: number[]): void {
    if (partitions.length) this.consumer.resume([{ topic: this.topic, partitions }]);
  }

  /** Finishes the batch in hand, leaves the group and disconnects. */
  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

/** A producer for dead letters, tests and benchmarks. */
export class RecordProducer {
  private constructor(private readonly producer: Producer) {}

  static async connect(connection: KafkaConnectionOptions): Promise<RecordProducer> {
    // Java-compatible murmur2 partitioning (the kafkajs 2 default), named so it does not warn.
    const producer = client(connection).producer({ allowAutoTopicCreation: false, idempotent: false, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    return new RecordProducer(producer);
  }

  async send(topic: string, records: OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.producer.send({
      topic,
      acks: -1,
      messages: records.map((r) => ({ key: r.key ?? null, value: r.value, headers: r.headers, partition: r.partition })),
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}

/** A long-lived admin connection, for the end offsets a worker polls (lag, idle partitions). */
export class TopicAdmin {
  private constructor(private readonly admin: Admin) {}

  static async connect(connection: KafkaConnectionOptions): Promise<TopicAdmin> {
    const admin = client(connection).admin();
    await admin.connect();
    return new TopicAdmin(admin);
  }

  async topicExists(topic: string): Promise<boolean> {
    return (await this.admin.listTopics()).includes(topic);
  }

  /** Creates the topic (broker default replication); false when it already existed. Throws a KafkaError (NOT_AUTHORIZED...). */
  async createTopic(topic: string, partitions: number): Promise<boolean> {
    try {
      return await createTopicWithLeaders(this.admin, { topic, numPartitions: partitions });
    } catch (err) {
      throw toKafkaError(err, `cannot create topic ${topic}`);
    }
  }

  async endOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
  }

  /** The first offset each partition still holds (records before it were deleted by retention). */
  async startOffsets(topic: string): Promise<Map<number, number>> {
    const offsets = await this.admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, Number(o.low)]));
  }

  async disconnect(): Promise<void> {
    await this.admin.disconnect();
  }
}
