import { describe, expect, it } from 'vitest';
import { WorkQueue } from './queue.js';

describe('WorkQueue', () => {
  it('collapses a burst of events for one key into one reconcile', async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 10; i++) q.add('ns/a');
    q.add('ns/b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('never hands one key to two workers; a key added while in flight runs once more after', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    const key = await q.get();
    q.add('ns/a');
    q.add('ns/a');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('ns/a');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.add('ns/a');
    expect(await next).toBe('ns/a');
  });

  it('backs off exponentially per key until forgotten', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    expect([1, 2, 3, 4].map(() => q.addRateLimited('ns/a'))).toEqual([10, 20, 40, 50]);
    expect(q.addRateLimited('ns/b')).toBe(10);
    q.forget('ns/a');
    expect(q.addRateLimited('ns/a')).toBe(10);
    q.shutDown();
  });

  it('requeues after a delay, keeping the earliest pending time', async () => {
    const q = new WorkQueue();
    q.addAfter('ns/a', 20);
    q.addAfter('ns/a', 5_000);
    expect(q.length).toBe(0);
    await new Promise((r) => setTimeout(r, 60));
    expect(q.length).toBe(1);
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue();
    const next = q.get();
    q.shutDown();
    expect(await next).toBeUndefined();
  });
});
