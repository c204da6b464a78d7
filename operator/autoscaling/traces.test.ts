import { describe, expect, it } from 'vitest';
import { defaultPolicy, flaps, simulate, type TraceResult } from './simulate.js';
import { traces } from './traces.js';

const window = defaultPolicy.scaleDownStabilizationSeconds;
const run = (name: keyof typeof traces): TraceResult => simulate(traces[name]);
const actionsBetween = (r: TraceResult, from: number, to: number) => new Set(r.steps.filter((s) => s.t >= from && s.t < to).map((s) => s.action));

describe('autoscaling decisions on synthetic traces (one worker does 1000 events/s)', () => {
  it('keeps a steady load at the same parallelism', () => {
    const r = run('steady');
    expect(r.sequence).toEqual([3]);
    expect(r.maxLag).toBe(0);
  });

  it('follows a ramp from one worker to four, only ever up, one worker at a time', () => {
    const r = run('rampUp');
    expect(r.sequence).toEqual([1, 2, 3, 4]);
    expect(flaps(r.scales, window)).toEqual([]);
    expect(r.finalLag).toBe(0);
  });

  it('answers a sudden spike with one scale-up to what it needs, and one scale-down after the window', () => {
    const r = run('spike');
    expect(r.sequence).toEqual([2, 5, 2]);
    const [up, down] = r.scales;
    expect(up.t - 122).toBeLessThanOrEqual(defaultPolicy.scaleUpStabilizationSeconds + defaultPolicy.metricsWindowSeconds);
    expect(down.t - 722).toBeGreaterThanOrEqual(window);
    expect(up.reason).toMatch(/^scaling up from 2 to 5: input 3\.6k\/s \+ lag \d+k \/ 300 s catch-up/);
    expect(flaps(r.scales, window)).toEqual([]);
  });

  it('absorbs a 20 s burst in its headroom instead of scaling', () => {
    const r = run('burst');
    expect(r.sequence).toEqual([3]);
    expect(r.finalLag).toBe(0);
  });

  it('scales up to drain a backlog within the catch-up target, then back down as it empties', () => {
    const r = run('drain');
    expect(r.sequence).toEqual([1, 4, 3, 1]);
    expect(r.scales[0].reason).toContain('lag 575k / 300 s catch-up');
    // Four workers drain 600k events (at 500/s input) in about three minutes: inside the 300 s target.
    const drained = r.steps.find((s) => s.t > r.scales[0].t && s.lag === 0)!;
    expect(drained.t - r.scales[0].t).toBeLessThan(defaultPolicy.catchUpSeconds);
    expect(flaps(r.scales, window)).toEqual([]);
  });

  it('does not react to noisy rates (input ±40%, worker rate ±15%)', () => {
    const r = run('noisy');
    expect(r.sequence).toEqual([3]);
  });

  it('holds every decision while a worker is not ready, and sizes again once it is back', () => {
    const r = run('notReady');
    expect(r.sequence).toEqual([3]);
    const outage = traces.notReady.outage!;
    expect(actionsBetween(r, outage.from, outage.to)).toEqual(new Set(['Hold']));
    expect(r.steps.find((s) => s.t === outage.from + 30)!.reason).toMatch(/^holding at 3 workers: worker w1 is not ready/);
    expect(actionsBetween(r, outage.to + 60, traces.notReady.seconds)).toEqual(new Set(['Steady']));
    expect(r.finalLag).toBe(0);
  });

  it('never runs more workers than the topic has partitions', () => {
    const r = run('partitionCap');
    expect(r.sequence).toEqual([2, 6]);
    expect(r.scales[0].reason).toMatch(/11\.25 workers, capped at 6$/);
    expect(Math.max(...r.steps.map((s) => s.workers))).toBe(6);
  });

  it('does not follow a load that swings faster than the scale-down window', () => {
    const r = run('oscillating');
    expect(r.sequence).toEqual([2, 4]);
  });

  it('waits out the window before a second change of direction, even when the load is back', () => {
    const r = run('reversal');
    expect(r.sequence).toEqual([2, 4, 2, 5, 4]);
    const [, down, up] = r.scales;
    expect(up.t - down.t).toBeGreaterThanOrEqual(window);
    const blocked = r.steps.filter((s) => s.t > down.t && s.t < up.t && s.action === 'Hold');
    expect(blocked.at(-1)!.reason).toMatch(/^would scale up from 2 to \d, but the last change of direction was .* ago, and two are never closer than spec\.autoscaling\.scaleDownStabilizationSeconds \(300 s\)/);
    expect(flaps(r.scales, window)).toEqual([]);
  });

  it('scales back up soon after a first scale-down when the load returns (one change of direction)', () => {
    const r = run('comeback');
    expect(r.sequence).toEqual([4, 2, 4, 2]);
    expect(flaps(r.scales, window)).toEqual([]);
  });

  it('finds no flap in any trace', () => {
    for (const name of Object.keys(traces) as (keyof typeof traces)[]) expect(flaps(run(name).scales, window), name).toEqual([]);
  });
});

describe('the flap detector the traces rely on', () => {
  it('reports a scale-down soon after a scale-up, and two changes of direction within the window', () => {
    const s = (t: number, from: number, to: number) => ({ t, from, to, reason: '' });
    expect(flaps([s(0, 2, 4), s(400, 4, 2), s(500, 2, 4)], 300)).toHaveLength(1);
    expect(flaps([s(0, 2, 4), s(100, 4, 2)], 300)).toHaveLength(1);
    expect(flaps([s(0, 4, 2), s(100, 2, 4)], 300)).toEqual([]);
    expect(flaps([s(0, 2, 4), s(400, 4, 2), s(800, 2, 4)], 300)).toEqual([]);
    expect(flaps([s(0, 2, 3), s(10, 3, 4), s(20, 4, 5)], 300)).toEqual([]);
  });
});
