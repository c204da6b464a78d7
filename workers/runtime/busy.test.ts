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

  it('credits the time between batches, at most a second of it: an idle worker passes a small batch at once, a large one waits the rest', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(200, time.now, time.sleep);
    await pacer.take(20); // the bucket starts empty: 100 ms
    expect(time.now()).toBeCloseTo(100);
    time.advance(10_000);
    // Its 250 ms share passed on credit, and is returned: busy time the batch did not spend.
    expect(await pacer.take(50)).toBeCloseTo(250);
    expect(time.now()).toBeCloseTo(10_100);
    time.advance(10_000);
    // 2 s of events after 10 s idle: 1 s of credit, 1 s of wait.
    expect(await pacer.take(400)).toBeCloseTo(1000);
    expect(time.now()).toBeCloseTo(21_100);
  });

  it('gives a batch that overran its share no credit for the next one', async () => {
    const time = fakeTime();
    const pacer = new EventPacer(100, time.now, time.sleep);
    await pacer.take(10);
    const since = time.now();
    time.advance(500); // a slow write: 500 ms for a 100 ms share
    expect(await pacer.take(10, { since })).toBe(0);
    const next = time.now();
    expect(await pacer.take(10, { since: next })).toBe(0);
    expect(time.now() - next).toBeCloseTo(100);
  });

  /**
   * A consumer that always has records waiting: fetch (`gap`), work on the batch, pace it, and so on.
   * Returns events per wall second and per busy second (the batch's wall time plus the credit it passed on).
   */
  async function saturated(cap: number, batches: number, size: (i: number) => number, gap: (i: number) => number, workMs: number) {
    const time = fakeTime();
    const pacer = new EventPacer(cap, time.now, time.sleep);
    const busy = new BusyClock(time.now);
    let events = 0;
    for (let i = 0; i < batches; i++) {
      time.advance(gap(i));
      const n = size(i);
      await busy.time(async () => {
        const since = time.now();
        time.advance(workMs);
        busy.credit(await pacer.take(n, { since }));
      });
      events += n;
    }
    return { perSecond: events / (time.now() / 1000), perBusySecond: events / busy.seconds };
  }

  it('lets a saturated consumer reach its cap whatever its fetch gaps, and its events per busy second is the cap', async () => {
    // 30 events (300 ms at 100/s) per fetch, 120 ms between batches: anchored at each batch's start this did 30/420 ms = 71/s.
    const even = await saturated(100, 200, () => 30, () => 120, 20);
    expect(even.perSecond).toBeGreaterThan(97);
    expect(even.perSecond).toBeLessThanOrEqual(100.5);
    expect(even.perBusySecond).toBeCloseTo(100, 0);
    // Uneven fetches: 1..60 events, gaps of 10..400 ms (under the 1 s of credit).
    const uneven = await saturated(100, 400, (i) => 1 + ((i * 37) % 60), (i) => 10 + ((i * 53) % 390), 5);
    expect(uneven.perSecond).toBeGreaterThan(97);
    expect(uneven.perSecond).toBeLessThanOrEqual(100.5);
    expect(uneven.perBusySecond).toBeCloseTo(100, 0);
  });

  it('measures an unsaturated worker at its cap too: events per busy second is the cap, not the machine under it', async () => {
    // 40/s of input in batches of 20 every 500 ms, on a worker capped at 100/s that does the work in 2 ms.
    const time = fakeTime();
    const pacer = new EventPacer(100, time.now, time.sleep);
    const busy = new BusyClock(time.now);
    let events = 0;
    for (let i = 0; i < 120; i++) {
      const arrives = i * 500;
      if (time.now() < arrives) time.advance(arrives - time.now());
      await busy.time(async () => {
        const since = time.now();
        time.advance(2);
        busy.credit(await pacer.take(20, { since }));
      });
      events += 20;
    }
    expect(events / (time.now() / 1000)).toBeCloseTo(40, 0);
    expect(events / busy.seconds).toBeCloseTo(100, 5);
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
