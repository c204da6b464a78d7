import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layeredEnv, parseDotEnv, readDotEnv } from './dotenv.js';

describe('the .env file of `sluice run`', () => {
  it('reads the lines the seed system used: KEY=value, comments, export, quotes', () => {
    const text = [
      '# Kafka configuration',
      'KAFKA_BOOTSTRAP_SERVERS=localhost:9092',
      'export KAFKA_TOPIC=user_events   # trailing comment',
      '',
      "CHURN_MODEL_PATH='models/my model.onnx'",
      'SMTP_FROM="Shop <alerts@shop.example>"',
      'MULTI="a\\nb"',
      'HASH=abc#def',
      'EMPTY=',
    ].join('\n');
    expect(parseDotEnv(text, '.env')).toEqual({
      KAFKA_BOOTSTRAP_SERVERS: 'localhost:9092',
      KAFKA_TOPIC: 'user_events',
      CHURN_MODEL_PATH: 'models/my model.onnx',
      SMTP_FROM: 'Shop <alerts@shop.example>',
      MULTI: 'a\nb',
      HASH: 'abc#def',
      EMPTY: '',
    });
  });

  it('names the line that is not KEY=value', () => {
    expect(() => parseDotEnv('A=1\nthis is not a setting\n', 'conf/.env')).toThrow("conf/.env:2: expected KEY=value, got 'this is not a setting'");
    expect(() => parseDotEnv('A="open', '.env')).toThrow('.env:1: unclosed double quote');
  });

  it('is optional by default but required when named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-dotenv-'));
    expect(readDotEnv(join(dir, '.env'), false)).toEqual({});
    expect(() => readDotEnv(join(dir, 'other.env'), true)).toThrow(/--env-file .*other\.env: cannot read it \(ENOENT\)/);
    writeFileSync(join(dir, '.env'), 'REDIS_PORT=6380\n');
    expect(readDotEnv(join(dir, '.env'), false)).toEqual({ REDIS_PORT: '6380' });
  });

  it('ranks flags over the environment over the file', () => {
    const env = layeredEnv(
      { REDIS_HOST: 'from-file', REDIS_PORT: '1', KAFKA_TOPIC: 'file-topic' },
      { REDIS_HOST: 'from-env', REDIS_PORT: '2', KAFKA_TOPIC: '' },
      { REDIS_HOST: 'from-flag', KAFKA_BOOTSTRAP_SERVERS: undefined },
    );
    expect(env).toMatchObject({ REDIS_HOST: 'from-flag', REDIS_PORT: '2', KAFKA_TOPIC: 'file-topic' });
    expect('KAFKA_BOOTSTRAP_SERVERS' in env).toBe(false);
  });
});
