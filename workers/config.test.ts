import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig, resolveWorkerConfig, WorkerConfigError } from './config.js';

const base = {
  job: { name: 'shop', type: 'cart' },
  kafka: { bootstrapServers: ['kafka:9092'], topic: 'user_events', consumerGroup: 'sluice-shop' },
  redis: { host: 'redis', port: 6379 },
  checkpoint: { dir: '/var/lib/sluice' },
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WorkerConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a WorkerConfigError');
}

describe('worker config', () => {
  it('fills the documented defaults', () => {
    const c = resolveWorkerConfig(base, {});
    // The ProcessingJob's defaults (crds/): one table, whichever way a worker starts.
    expect(c.kafka.startFrom).toBe('latest');
    expect(c.kafka.deadLetterTopic).toBe('user_events.dlq');
    expect(c.redis.keyPrefix).toBe('');
    expect(c.checkpoint.intervalSeconds).toBe(60);
    expect(c.cart).toEqual({ abandonWindowMinutes: 60, abandonThreshold: 0.75 });
    expect(c.metrics.port).toBe(9090);
    expect(c.model).toEqual({});
  });

  it("lets the seed's environment variables override the document", () => {
    const c = resolveWorkerConfig(base, {
      KAFKA_BOOTSTRAP_SERVERS: 'a:1, b:2',
      KAFKA_TOPIC: 'events2',
      REDIS_HOST: 'r2',
      REDIS_PORT: '6380',
      CART_MODEL_PATH: '/models/cart.onnx',
      CHURN_MODEL_PATH: '/models/churn.onnx',
      CART_ABANDON_THRESHOLD: '0.5',
      ABANDON_WINDOW_MIN: '30',
    });
    expect(c.kafka.bootstrapServers).toEqual(['a:1', 'b:2']);
    expect(c.kafka.topic).toBe('events2');
    expect(c.kafka.deadLetterTopic).toBe('events2.dlq');
    expect(c.redis).toMatchObject({ host: 'r2', port: 6380 });
    expect(c.model.path).toBe('/models/cart.onnx');
    expect(c.cart).toEqual({ abandonWindowMinutes: 30, abandonThreshold: 0.5 });
  });

  it('builds a complete config from the environment alone, given a type', () => {
    const c = resolveWorkerConfig(undefined, { KAFKA_BOOTSTRAP_SERVERS: 'k:9092', CHURN_MODEL_PATH: '/m.onnx' }, { type: 'churn' });
    expect(c.checkpoint).toEqual({ dir: 'checkpoints', intervalSeconds: 60 });
    expect(c.job).toEqual({ name: 'sluice-churn', namespace: 'default', type: 'churn' });
    expect(c.kafka).toMatchObject({ topic: 'user_events', consumerGroup: 'sluice-default-sluice-churn', bootstrapServers: ['k:9092'] });
    expect(c.redis).toMatchObject({ host: 'localhost', port: 6379 });
    expect(c.model.path).toBe('/m.onnx');
    expect(c.cart).toBeUndefined();
  });

  it('names every invalid field in one message', () => {
    const message = errorOf(() =>
      resolveWorkerConfig({ ...base, job: { name: 'x', type: 'fraud' }, redis: { host: 'r', port: 'six' }, checkpoint: { dir: '' }, kafka: { ...base.kafka, bootstrapServers: ['no-port'], extra: 1 } }, {}),
    );
    expect(message).toContain("job.type: must be one of \"churn\", \"cart\"");
    expect(message).toContain('redis.port: must be integer');
    expect(message).toContain('checkpoint.dir: must NOT have fewer than 1 characters');
    expect(message).toContain('kafka.bootstrapServers.0: "no-port" is not host:port: write a broker such as kafka:9092');
    expect(message).toContain('kafka.extra: unknown field');
  });

  it('keeps state in memory unless the disk backend is asked for, and checks its settings', () => {
    expect(resolveWorkerConfig(base, {}).state).toBeUndefined();
    expect(resolveWorkerConfig({ ...base, state: { backend: 'disk' } }, {}).state).toEqual({ backend: 'disk', dir: 'state', cacheMiB: 256 });
    expect(errorOf(() => resolveWorkerConfig({ ...base, state: { backend: 'rocks', cacheMiB: 1 } }, {}))).toMatch(/state\.backend: must be one of "memory", "disk"[\s\S]*state\.cacheMiB: must be >= 16/);
  });

  it('throttles a worker from the document or SLUICE_THROTTLE_EVENTS_PER_SECOND, and refuses a rate of zero', () => {
    expect(resolveWorkerConfig(base, {}).throttle).toBeUndefined();
    expect(resolveWorkerConfig({ ...base, throttle: { eventsPerSecond: 250 } }, {}).throttle).toEqual({ eventsPerSecond: 250 });
    expect(resolveWorkerConfig(base, { SLUICE_THROTTLE_EVENTS_PER_SECOND: '120' }).throttle).toEqual({ eventsPerSecond: 120 });
    expect(errorOf(() => resolveWorkerConfig({ ...base, throttle: { eventsPerSecond: 0 } }, {}))).toContain('throttle.eventsPerSecond');
  });

  it('names the environment variable that does not parse', () => {
    expect(errorOf(() => resolveWorkerConfig(base, { REDIS_PORT: 'abc' }))).toContain('REDIS_PORT="abc" is not an integer');
    expect(errorOf(() => resolveWorkerConfig(base, { CART_ABANDON_THRESHOLD: '1.5' }))).toContain('cart.abandonThreshold: CART_ABANDON_THRESHOLD="1.5" (from the environment) must be <= 1');
  });

  it('refuses cart settings on a churn job and a dead-letter topic equal to the input', () => {
    expect(errorOf(() => resolveWorkerConfig({ ...base, job: { name: 'c', type: 'churn' }, cart: { abandonWindowMinutes: 5 } }, {}))).toContain("cart: only allowed when job.type is 'cart'");
    expect(errorOf(() => resolveWorkerConfig({ ...base, kafka: { ...base.kafka, deadLetterTopic: 'user_events' } }, {}))).toContain('kafka.deadLetterTopic: must differ');
  });

  it('reads YAML files and says which file is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'job: {name: a, type: churn}\nkafka: {bootstrapServers: ["k:1"], topic: t, consumerGroup: g}\nredis: {host: r, port: 1}\ncheckpoint: {dir: /c, intervalSeconds: 2}\n');
    expect(loadWorkerConfig(good, {}).checkpoint.intervalSeconds).toBe(2);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'job: [unclosed\n');
    expect(errorOf(() => loadWorkerConfig(broken, {}))).toContain(`worker config ${broken} is not valid YAML`);
    expect(errorOf(() => loadWorkerConfig(join(dir, 'missing.yaml'), {}))).toContain('cannot read worker config');
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the variable and its value when a value from the environment is invalid', () => {
    const topic = errorOf(() => resolveWorkerConfig(base, { KAFKA_TOPIC: 'bad topic!' }));
    expect(topic).toContain('kafka.topic: KAFKA_TOPIC="bad topic!" (from the environment) is not a Kafka topic name');
    expect(topic).toContain('for example user_events');
    expect(topic).not.toContain('undefined');
    expect(errorOf(() => resolveWorkerConfig(base, { REDIS_HOST: 'redis://x' }))).toContain('redis.host: REDIS_HOST="redis://x" (from the environment) has a scheme');
    expect(errorOf(() => resolveWorkerConfig(base, { KAFKA_BOOTSTRAP_SERVERS: 'k:9092,127.0.0.1:99999' }))).toContain(
      'kafka.bootstrapServers.1: "127.0.0.1:99999" of KAFKA_BOOTSTRAP_SERVERS="k:9092,127.0.0.1:99999" (from the environment) has port 99999, outside 1-65535',
    );
    expect(errorOf(() => resolveWorkerConfig({ ...base, kafka: { ...base.kafka, topic: 'user events' } }, {}))).toContain('kafka.topic: "user events" is not a Kafka topic name');
  });
});
