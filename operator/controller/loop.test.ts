import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TerminalError } from './errors.js';
import { ControllerLoop, type ReconcileResult } from './loop.js';
import { WorkQueue } from './queue.js';

const quiet = pino({ level: 'silent' });

function loopWith(result: () => Promise<ReconcileResult>): { queue: WorkQueue; loop: ControllerLoop } {
  const queue = new WorkQueue({ baseDelayMs: 60_000, maxDelayMs: 60_000 });
  return { queue, loop: new ControllerLoop(queue, result, quiet) };
}

describe('the controller loop', () => {
  it('forgets the failures of a key that reconciles', async () => {
    const { queue, loop } = loopWith(async () => ({}));
    queue.addRateLimited('ns/a');
    expect(queue.failureCount('ns/a')).toBe(1);
    expect(await loop.handle('ns/a')).toBe('success');
    expect(queue.failureCount('ns/a')).toBe(0);
    queue.shutDown();
  });

  it('retries an error with the key backoff, but counts a terminal error without retrying it', async () => {
    const failing = loopWith(async () => {
      throw new Error('API server unavailable');
    });
    expect(await failing.loop.handle('ns/a')).toBe('error');
    expect(failing.queue.failureCount('ns/a')).toBe(1);
    failing.queue.shutDown();

    const terminal = loopWith(async () => {
      throw new TerminalError('spec can never work');
    });
    expect(await terminal.loop.handle('ns/a')).toBe('terminal');
    expect(terminal.queue.failureCount('ns/a')).toBe(0);
    terminal.queue.shutDown();
  });

  it('looks again after the delay a reconcile asks for', async () => {
    const { queue, loop } = loopWith(async () => ({ requeueAfterMs: 10 }));
    await loop.handle('ns/a');
    expect(queue.length).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(queue.length).toBe(1);
    queue.shutDown();
  });
});
