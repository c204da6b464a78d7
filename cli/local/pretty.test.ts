import { expect, it } from 'vitest';
import { levelNumber, prettyLine } from './pretty.js';

it('prints a pino JSON line as time, level, source, message and the other fields', () => {
  const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), pid: 7, hostname: 'h', name: 'sluice-worker', job: 'churn', type: 'churn', msg: 'redis write failed; retrying', target: 'redis', attempt: 3, err: 'connect ECONNREFUSED' });
  expect(prettyLine(line, { color: false, source: 'churn/0' })).toBe('03:04:05.678 WARN  churn/0 redis write failed; retrying target=redis attempt=3 err="connect ECONNREFUSED"');
  expect(prettyLine(line, { color: false })).toBe('03:04:05.678 WARN  churn redis write failed; retrying target=redis attempt=3 err="connect ECONNREFUSED"');
  expect(prettyLine(line, { color: false, minLevel: levelNumber('error') })).toBeUndefined();
  expect(prettyLine('plain text from a crash', { color: false, source: 'churn/1' })).toBe('churn/1 plain text from a crash');
  expect(() => levelNumber('loud')).toThrow(/--level must be one of trace, debug, info, warn, error, fatal/);
});
