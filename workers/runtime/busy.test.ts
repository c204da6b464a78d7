import { describe, expect, it } from 'vitest';
import { BusyClock, EventPacer } from './busy.js';

function fakeTime() {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
    advance: (ms: number) => (t += ms),
  };
}

describe('BusyClock', () => {
  it('counts the wall time with work in hand, overlapping work once', async () => {
    const time = fakeTime();
    const clock = new BusyClock(time.now);
    await clock.time(async () => time.advance(100));
    time.advance(900); // idle
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = clock.time(async () => {
      await gate;
      time.advance(50);
    });
    const b = clock.time(async () => time.advance(200));
    await b;
    release();
    await a;
    expect(clock.seconds).toBeCloseTo(0.35);
  });

  it('includes the work in progress, and counts work that failed', async () => {
    const time = fakeTime();
    const clock = new BusyClock(time.now);
    await expect(clock.time(async () => { time.advance(40); throw new Error('redis down'); })).rejects.toThrow('redis down');
    let seen = 0;
    await clock.time(async () => {
      time.advance(60);
      seen = clock.seconds;
    });
    expect(seen).toBeCloseTo(0.1);
  });
});

describe('EventPacer', () => {
  it('lets a worker process at most its cap, whatever the batch sizes', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(250, time.now, time.sleep);
    for (const n of [100, 400, 1, 499]) await pacer.take(n);
    expect(time.now()).toBeCloseTo(4000);
  });

  it('makes a batch take its share of a second even when the worker was idle (so busy time shows the cap)', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(200, time.now, time.sleep);
    time.advance(10_000);
    await pacer.take(50);
    expect(time.now()).toBeCloseTo(10_250);
  });

  it('keeps the consumer alive during a long wait: the heartbeat runs between slices of at most a second', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(100, time.now, time.sleep);
    const beats: number[] = [];
    await pacer.take(350, {
      between: async () => {
        beats.push(time.now());
      },
    });
    expect(time.now()).toBeCloseTo(3500);
    expect(beats).toEqual([1000, 2000, 3000]);
  });

  it('counts the work on the events as part of their time: a batch that took 300 ms of 400 waits 100 ms', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(250, time.now, time.sleep);
    const since = time.now();
    time.advance(300);
    await pacer.take(100, { since });
    expect(time.now()).toBeCloseTo(400);
    const next = time.now();
    time.advance(500);
    await pacer.take(100, { since: next });
    expect(time.now()).toBeCloseTo(900);
  });

  it('refuses a cap that is not positive', () => {
    expect(() => new EventPacer(0)).toThrow('must be positive');
  });
});

describe('the busy-time metric', () => {
  it('serves the busy seconds as sluice_busy_seconds_total on /metrics', async () => {
    const { WorkerMetrics } = await import('./metrics.js');
    const metrics = new WorkerMetrics({ job: 'churn', type: 'churn' }, false);
    await metrics.busy.time(() => new Promise((r) => setTimeout(r, 30)));
    const text = await metrics.registry.metrics();
    const value = Number(/^sluice_busy_seconds_total\{[^}]*\} (\S+)$/m.exec(text)?.[1]);
    expect(value).toBeGreaterThanOrEqual(0.02);
    expect(value).toBeLessThan(1);
  });
});
