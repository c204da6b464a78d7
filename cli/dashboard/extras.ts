/**
 * What the dashboard shows beyond the workers' metrics, read where the data
 * is: recent alerts and the riskiest users from the job's Redis, dead-letter
 * reasons from its dead-letter topic. Local jobs only (a cluster's Redis and
 * Kafka are seldom reachable from a laptop).
 */
import { Redis } from 'ioredis';
import { jobTypes } from '../../workers/jobs/registry.js';
import type { ResultsView } from '../../workers/runtime/job.js';
import { DLQ_HEADERS } from '../../workers/runtime/kafka-worker.js';
import { GroupConsumer, TopicAdmin } from '../../lib/kafka/client.js';
import type { JobView } from '../status/model.js';

export interface AlertView {
  cartId: string;
  userId: string;
  score: number;
  value?: string;
  email?: string;
  abandonedAt: string;
}

export interface RiskyUser {
  userId: string;
  score: number;
  detail?: string;
}

export interface DeadLetterView {
  available: boolean;
  note?: string;
  total: number;
  reasons: Array<{ reason: string; count: number }>;
  recent: Array<{ partition: string; offset: string; reason: string; at: string }>;
}

export interface JobExtras {
  alerts: AlertView[];
  riskiest: RiskyUser[];
  /** Users whose scores were read so far (the scan goes round all of them, a slice per refresh). */
  usersSeen: number;
  deadLetters: DeadLetterView;
  redisError?: string;
}

const KEYS_PER_REFRESH = 4_000;
const MAX_USERS = 200_000;

/** Walks `<prefix>user:*` a slice at a time and keeps each user's latest score. */
class ScoreScan {
  private cursor = '0';
  readonly scores = new Map<string, { score: number; detail?: string }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly fields: ResultsView,
  ) {}

  async step(): Promise<void> {
    let read = 0;
    do {
      const [next, keys] = await this.redis.scan(this.cursor, 'MATCH', `${this.prefix}user:*`, 'COUNT', 1_000);
      this.cursor = next;
      read += keys.length;
      if (keys.length === 0) continue;
      const pipe = this.redis.pipeline();
      for (const k of keys) pipe.hmget(k, this.fields.score, this.fields.detail);
      const rows = (await pipe.exec()) ?? [];
      keys.forEach((k, i) => {
        const [score, detail] = (rows[i]?.[1] ?? []) as (string | null)[];
        const user = k.slice(this.prefix.length + 'user:'.length);
        if (score === null || score === undefined || (this.scores.size >= MAX_USERS && !this.scores.has(user))) return;
        this.scores.set(user, { score: Number(score), detail: detail ? this.fields.label(detail) : undefined });
      });
    } while (this.cursor !== '0' && read < KEYS_PER_REFRESH);
  }

  top(n: number): RiskyUser[] {
    return [...this.scores]
      .sort((a, b) => b[1].score - a[1].score)
      .slice(0, n)
      .map(([userId, s]) => ({ userId, score: s.score, detail: s.detail }));
  }
}

/** Counts dead letters by reason, reading the topic from its start with a throwaway group that commits nothing. */
class DeadLetterReader {
  private consumer: GroupConsumer | undefined;
  private starting: Promise<void> | undefined;
  private lastTry = 0;
  private note: string | undefined = 'reading the dead-letter topic...';
  private total = 0;
  private readonly reasons = new Map<string, number>();
  private readonly recent: DeadLetterView['recent'] = [];

  constructor(
    private readonly brokers: string[],
    private readonly topic: string,
  ) {}

  ensure(): void {
    if (this.consumer || this.starting || Date.now() - this.lastTry < 30_000) return;
    this.lastTry = Date.now();
    const connection = { brokers: this.brokers, clientId: 'sluice-dashboard', connectionTimeoutMs: 3_000 };
    this.starting = this.exists(connection)
      .then((exists) => {
        if (!exists) throw new Error(`no dead-letter topic ${this.topic} yet`);
        return this.start(connection);
      })
      .then((c) => {
        this.consumer = c;
      })
      .catch((err: Error) => {
        this.note = err.message.startsWith('no dead-letter topic') ? err.message : `dead-letter topic unreadable: ${err.message}`;
      })
      .finally(() => {
        this.starting = undefined;
      });
  }

  /** Checked first: subscribing would let the broker auto-create the topic, which is not the dashboard's business. */
  private async exists(connection: { brokers: string[] }): Promise<boolean> {
    const admin = await TopicAdmin.connect(connection);
    try {
      return await admin.topicExists(this.topic);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private start(connection: { brokers: string[]; clientId: string; connectionTimeoutMs: number }): Promise<GroupConsumer> {
    return GroupConsumer.start(
      connection,
      { groupId: `sluice-dashboard-${process.pid}-${this.topic}`, topic: this.topic, startFrom: 'earliest', maxWaitTimeMs: 1_000 },
      {
        onAssignment: () => {
          this.note = undefined;
        },
        onRebalancing: () => undefined,
        onCrash: (err) => {
          this.note = `dead-letter topic unreadable: ${err.message}`;
          this.consumer = undefined;
        },
        onBatch: async (batch) => {
          for (const r of batch.records) this.add(r.headers, r.timestamp);
          batch.consumed();
        },
      },
    );
  }

  private add(headers: Record<string, string>, timestamp: number): void {
    const reason = (headers[DLQ_HEADERS.reason] ?? 'no reason header').slice(0, 160);
    this.total += 1;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    this.recent.unshift({
      partition: headers[DLQ_HEADERS.partition] ?? '?',
      offset: headers[DLQ_HEADERS.offset] ?? '?',
      reason,
      at: new Date(timestamp).toISOString(),
    });
    this.recent.length = Math.min(this.recent.length, 15);
  }

  view(): DeadLetterView {
    const reasons = [...this.reasons].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([reason, count]) => ({ reason, count }));
    return { available: this.consumer !== undefined, note: this.note, total: this.total, reasons, recent: [...this.recent] };
  }

  async close(): Promise<void> {
    await this.starting;
    await this.consumer?.stop().catch(() => undefined);
  }
}

/** One Redis connection per address, one score scan per job, one dead-letter reader per dead-letter topic. */
export class Extras {
  private readonly clients = new Map<string, Redis>();
  private readonly scans = new Map<string, ScoreScan>();
  private readonly readers = new Map<string, DeadLetterReader>();

  private client(r: NonNullable<JobView['redis']>): Redis {
    const key = `${r.host}:${r.port}/${r.db ?? 0}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new Redis({ host: r.host, port: r.port, db: r.db ?? 0, password: process.env.REDIS_PASSWORD || undefined, enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false, retryStrategy: (n) => Math.min(n * 200, 5_000) });
      c.on('error', () => undefined);
      this.clients.set(key, c);
    }
    return c;
  }

  async of(job: JobView): Promise<JobExtras> {
    const deadLetters = this.deadLetters(job);
    if (!job.redis) return { alerts: [], riskiest: [], usersSeen: 0, deadLetters };
    const redis = this.client(job.redis);
    const prefix = job.redis.keyPrefix;
    // The job type says where its scores are (both jobs may share one hash per user) and whether it records alerts.
    const results = jobTypes.find(job.type)?.results;
    if (!results) return { alerts: [], riskiest: [], usersSeen: 0, deadLetters };
    let scan = this.scans.get(job.name);
    if (!scan) {
      scan = new ScoreScan(redis, prefix, results);
      this.scans.set(job.name, scan);
    }
    try {
      await scan.step();
      const alerts = results.alerts ? await this.alerts(redis, prefix) : [];
      return { alerts, riskiest: scan.top(10), usersSeen: scan.scores.size, deadLetters };
    } catch (err) {
      return { alerts: [], riskiest: scan.top(10), usersSeen: scan.scores.size, deadLetters, redisError: `Redis ${job.redis.host}:${job.redis.port}: ${(err as Error).message}` };
    }
  }

  private async alerts(redis: Redis, prefix: string): Promise<AlertView[]> {
    const ids = await redis.zrevrange(`${prefix}alerts`, 0, 9);
    if (ids.length === 0) return [];
    const pipe = redis.pipeline();
    for (const id of ids) pipe.hgetall(`${prefix}alert:${id}`);
    const rows = (await pipe.exec()) ?? [];
    return ids.map((id, i) => {
      const h = (rows[i]?.[1] ?? {}) as Record<string, string>;
      return { cartId: id, userId: h.user_id ?? '?', score: Number(h.score ?? 0), value: h.cart_value, email: h.email, abandonedAt: h.abandoned_at ?? '' };
    });
  }

  private deadLetters(job: JobView): DeadLetterView {
    if (!job.kafka || !job.deadLetterTopic) return { available: false, note: 'dead letters are shown for local jobs', total: 0, reasons: [], recent: [] };
    // Jobs on one input topic share its dead-letter topic: one reader (one consumer group) for all of them.
    const key = `${job.kafka.brokers.join(',')}/${job.deadLetterTopic}`;
    let reader = this.readers.get(key);
    if (!reader) {
      reader = new DeadLetterReader(job.kafka.brokers, job.deadLetterTopic);
      this.readers.set(key, reader);
    }
    reader.ensure();
    return reader.view();
  }

  async close(): Promise<void> {
    await Promise.all([...this.readers.values()].map((r) => r.close()));
    for (const c of this.clients.values()) c.disconnect();
  }
}
