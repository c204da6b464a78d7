/**
 * Results to Redis through ioredis, one pipeline per batch. Keys (all behind
 * redis.keyPrefix): `user:<id>` (hash, the seed's layout) and whatever hashes,
 * sorted sets and exactly-once markers a job type writes (cart: `alert:<cartId>`,
 * `alerts`, `alert_email:<cartId>`).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../../lib/worker-config/config.js';
import type { UserWrite } from './job.js';
import type { OnceClaim, OnceOutcome, RecordWrite, ResultSink } from './sink.js';

// Claim when free or when the last attempt failed for sure; a holder may reclaim its own claim.
// With ARGV[2] = '1' (at-least-once) any claim but 'sent' is taken over: 'over:<previous holder>'.
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if (not v) or v == 'failed' or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  return 'claimed'
end
if v ~= 'sent' and ARGV[2] == '1' then
  redis.call('SET', KEYS[1], ARGV[1])
  return 'over:' .. v
end
return v`;

// Only the holder may finish its claim.
const FINISH = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`;

export class RedisSink implements ResultSink {
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttl: number,
  ) {}

  static connect(config: WorkerConfig['redis'], password: string | undefined, logger: Logger): RedisSink {
    const redis = new Redis({
      host: config.host,
      port: config.port,
      db: config.db ?? 0,
      password,
      tls: config.tls ? {} : undefined,
      // Fail fast while disconnected: the runtime retries the whole batch with
      // backoff and stops consuming meanwhile, instead of piling up commands.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      lazyConnect: false,
    });
    let down = false;
    redis.on('error', (err: Error) => {
      if (!down) logger.warn({ err: err.message, redis: `${config.host}:${config.port}` }, 'redis connection error');
      down = true;
    });
    redis.on('ready', () => {
      if (down) logger.info({ redis: `${config.host}:${config.port}` }, 'redis connection back');
      down = false;
    });
    return new RedisSink(redis, config.keyPrefix ?? '', config.ttlSeconds ?? 0);
  }

  /** Resolves once connected (or rejects after `timeoutMs`), for a start-up check with a clear message. */
  async waitReady(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(new Error(`redis not reachable within ${timeoutMs} ms (status ${this.redis.status})`));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', onReady);
    });
  }

  userKey(userId: string): string {
    return `${this.prefix}user:${userId}`;
  }

  async writeUsers(writes: readonly UserWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const p = this.redis.pipeline();
    for (const w of writes) {
      const key = this.userKey(w.userId);
      p.hset(key, w.fields);
      if (this.ttl > 0) p.expire(key, this.ttl);
    }
    await execOrThrow(p);
  }

  async writeRecords(records: readonly RecordWrite[]): Promise<void> {
    if (records.length === 0) return;
    const p = this.redis.pipeline();
    for (const r of records) {
      const key = `${this.prefix}${r.key}`;
      p.hset(key, r.fields);
      for (const [field, value] of Object.entries(r.ifAbsent ?? {})) p.hsetnx(key, field, value);
      if (r.index) p.zadd(`${this.prefix}${r.index.key}`, r.index.score, r.index.member);
      if (this.ttl > 0) p.expire(key, this.ttl);
    }
    await execOrThrow(p);
  }

  async claimOnce(key: string, holder: string, takeOver = false): Promise<OnceClaim> {
    const result = String(await this.redis.eval(CLAIM, 1, `${this.prefix}${key}`, holder, takeOver ? '1' : '0'));
    if (result === 'claimed') return { kind: 'claimed' };
    if (result === 'sent') return { kind: 'sent' };
    if (result.startsWith('over:')) return { kind: 'taken-over', holder: result.slice(5) };
    return { kind: 'uncertain', holder: result };
  }

  async finishOnce(key: string, holder: string, outcome: OnceOutcome, status?: { key: string; field: string }): Promise<void> {
    const p = this.redis.pipeline();
    p.eval(FINISH, 1, `${this.prefix}${key}`, holder, outcome);
    if (status && outcome !== 'failed') p.hset(`${this.prefix}${status.key}`, status.field, outcome);
    await execOrThrow(p);
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

async function execOrThrow(p: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = await p.exec();
  if (!results) throw new Error('redis pipeline was discarded');
  for (const [err] of results) if (err) throw err;
}
