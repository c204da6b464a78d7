import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { packageRoot } from '../lib/package-root.js';
import { resolveWorkerConfig, workerVariables } from './config.js';

const cart = {
  job: { name: 'cart', type: 'cart' },
  kafka: { bootstrapServers: ['k:9092'], topic: 't' },
  redis: { host: 'r' },
  checkpoint: { dir: '/tmp/c' },
  alerts: { smtp: { host: 'mailpit', port: 1025 }, from: 'a@b.c', to: ['d@e.f'] },
};

it('lets every local setting come from a variable: SMTP host and port, consumer group, key prefix', () => {
  const env = { SMTP_HOST: '127.0.0.1', SMTP_PORT: '32525', KAFKA_CONSUMER_GROUP: 'my-group', REDIS_KEY_PREFIX: 'dev:' };
  const config = resolveWorkerConfig(cart, env);
  expect((config.alerts as { smtp?: unknown } | undefined)?.smtp).toMatchObject({ host: '127.0.0.1', port: 32525 });
  expect(config.kafka.consumerGroup).toBe('my-group');
  expect(config.redis.keyPrefix).toBe('dev:');
  // SMTP_HOST sets the SMTP server of a job that sends alerts; it does not invent alerts for one that does not.
  const quiet: Record<string, unknown> = { ...cart };
  delete quiet.alerts;
  expect(resolveWorkerConfig(quiet, env).alerts).toBeUndefined();
});

it('documents every variable of the contract, the new local ones too, in the README and docs/workers.md', () => {
  const vars = workerVariables();
  expect(vars).toEqual(expect.arrayContaining(['KAFKA_BOOTSTRAP_SERVERS', 'KAFKA_CONSUMER_GROUP', 'REDIS_KEY_PREFIX', 'SMTP_HOST', 'SMTP_PORT', 'CART_MODEL_PATH']));
  for (const doc of ['README.md', 'docs/workers.md']) {
    const text = readFileSync(`${packageRoot()}/${doc}`, 'utf8');
    expect(vars.filter((v) => !text.includes(`\`${v}\``)), doc).toEqual([]);
  }
});
