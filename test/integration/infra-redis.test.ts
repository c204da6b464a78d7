import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redis, uniqueName } from '../support/infra.js';

// Proves hack/redis.sh started a real Redis that ioredis can use the way the
// workers do: plain keys, hashes and pipelined writes.
describe('redis from hack/redis.sh', () => {
  let client: Redis;
  const prefix = uniqueName('infra-redis');

  beforeAll(async () => {
    const { host, port } = redis();
    client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
  });

  afterAll(async () => {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
  });

  it('round-trips SET/GET with an expiry', async () => {
    await client.set(`${prefix}:score`, '0.73', 'EX', 60);
    expect(await client.get(`${prefix}:score`)).toBe('0.73');
    const ttl = await client.ttl(`${prefix}:score`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('round-trips HSET/HGETALL', async () => {
    await client.hset(`${prefix}:user:42`, { churn: '0.12', model: 'churn-v1' });
    expect(await client.hgetall(`${prefix}:user:42`)).toEqual({ churn: '0.12', model: 'churn-v1' });
  });

  it('executes a pipeline in order and reports each reply', async () => {
    const replies = await client
      .pipeline()
      .incr(`${prefix}:counter`)
      .incrby(`${prefix}:counter`, 4)
      .hset(`${prefix}:h`, 'a', '1')
      .get(`${prefix}:counter`)
      .exec();
    expect(replies).toEqual([
      [null, 1],
      [null, 5],
      [null, 1],
      [null, '5'],
    ]);
  });
});
