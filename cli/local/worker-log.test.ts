import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { workerReason } from './worker-log.js';

const line = (level: number, msg: string, extra: Record<string, unknown> = {}, time = 2_000): string => JSON.stringify({ level, time, msg, ...extra });

it("gives a worker's own reason for its exit: the last fatal line, else the last error, else the last line", () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-log-')), 'w.log');
  writeFileSync(file, [line(30, 'model loaded'), line(60, 'worker did not start', { err: 'connect ECONNREFUSED 127.0.0.1:1' }), line(30, 'bye')].join('\n'));
  expect(workerReason(file)).toBe('worker did not start: connect ECONNREFUSED 127.0.0.1:1');
  writeFileSync(file, [line(50, 'restore failed; retrying', { err: { message: 'disk full' } }), line(30, 'still here')].join('\n'));
  expect(workerReason(file)).toBe('restore failed; retrying: disk full');
  writeFileSync(file, 'Error: something native went wrong\n');
  expect(workerReason(file)).toBe('Error: something native went wrong');
  // Lines of an earlier run of the same worker do not count.
  writeFileSync(file, [line(60, 'old failure', {}, 1_000), line(30, 'started', {}, 5_000)].join('\n'));
  expect(workerReason(file, 4_000)).toBe('started');
  expect(workerReason(join(file, '..', 'missing.log'))).toMatch(/^no output/);
});
