import pino from 'pino';
import { Registry, Gauge } from 'prom-client';
import { expect, it } from 'vitest';
import { stallOf, Stalls } from './stalls.js';

it('logs a stall once when it begins and once when it ends, and keeps the gauge in step', async () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
  const registry = new Registry();
  const gauge = new Gauge({ name: 'sluice_stalled', help: 'h', labelNames: ['on', 'reason'], registers: [registry] });
  const stalls = new Stalls(gauge, logger);
  for (let i = 0; i < 5; i++) stalls.set('redis', 'RedisUnreachable', `connect ECONNREFUSED (attempt ${i})`);
  expect(lines.map((l) => l.msg)).toEqual(['waiting for Redis (RedisUnreachable): connect ECONNREFUSED (attempt 0); consumption paused until it answers, nothing is lost']);
  expect(await registry.metrics()).toContain('sluice_stalled{on="redis",reason="RedisUnreachable"} 1');
  expect(stalls.describe()).toMatch(/^waiting for Redis since .* \(RedisUnreachable\): connect ECONNREFUSED \(attempt 4\)$/);
  stalls.clear('redis');
  stalls.clear('redis');
  expect(lines).toHaveLength(2);
  expect(lines[1]!.msg).toMatch(/^Redis answers again after \d+s; going on$/);
  expect(await registry.metrics()).not.toContain('on="redis"');
});

it('tells an SMTP failure of a cart alert from a Redis one', () => {
  expect(stallOf('alerts', Object.assign(new Error('Connection refused'), { code: 'ECONNECTION', command: 'CONN' }))).toEqual({ on: 'smtp', reason: 'SmtpUnreachable' });
  expect(stallOf('alerts', Object.assign(new Error('550 no such user'), { responseCode: 550 }))).toEqual({ on: 'smtp', reason: 'SmtpRefused' });
  expect(stallOf('alerts', new Error("Stream isn't writeable and enableOfflineQueue options is false"))).toEqual({ on: 'redis', reason: 'RedisUnreachable' });
  expect(stallOf('redis', new Error('x'))).toEqual({ on: 'redis', reason: 'RedisUnreachable' });
  expect(stallOf('kafka', new Error('x'))).toEqual({ on: 'dlq', reason: 'DeadLetterTopicUnwritable' });
});
