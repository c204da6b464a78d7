import { describe, expect, it } from 'vitest';
import { EventGenerator } from './generator.js';
import { toWire } from './wire.js';

const take = (g: EventGenerator): string[] => [...g].map(toWire);

describe('EventGenerator', () => {
  it('yields the same events for the same seed, on every iteration', () => {
    const g = new EventGenerator({ seed: 11, users: 200, days: 10 });
    const a = take(g);
    expect(take(g)).toEqual(a);
    expect(take(new EventGenerator({ seed: 11, users: 200, days: 10 }))).toEqual(a);
    expect(a.length).toBeGreaterThan(5000);
  });

  it('yields different events for a different seed', () => {
    const a = take(new EventGenerator({ seed: 1, users: 200, days: 10 }));
    const b = take(new EventGenerator({ seed: 2, users: 200, days: 10 }));
    expect(b).not.toEqual(a);
  });

  it('yields events in event-time order inside the simulated period', () => {
    const g = new EventGenerator({ seed: 3, users: 300, days: 14, start: Date.UTC(2025, 5, 1) });
    let prev = -Infinity;
    for (const e of g) {
      expect(e.eventTime).toBeGreaterThanOrEqual(prev);
      expect(e.eventTime).toBeGreaterThanOrEqual(g.start);
      expect(e.eventTime).toBeLessThan(g.end);
      prev = e.eventTime;
    }
  });

  it('simulates carts that are bought and carts that are left, and users who stop coming', () => {
    const g = new EventGenerator({ seed: 5, users: 1000, days: 40 });
    const cartsAdded = new Set<string>();
    const cartsBought = new Set<string>();
    const lastSeen = new Map<string, number>();
    for (const e of g) {
      lastSeen.set(e.userId, e.eventTime);
      if (e.eventType === 'add_to_cart') cartsAdded.add(e.cartId!);
      if (e.eventType === 'purchase') cartsBought.add(e.cartId!);
    }
    const bought = [...cartsAdded].filter((c) => cartsBought.has(c)).length;
    expect(bought / cartsAdded.size).toBeGreaterThan(0.15);
    expect(bought / cartsAdded.size).toBeLessThan(0.7);
    const goneForTwoWeeks = [...lastSeen.values()].filter((t) => t < g.end - 14 * 86_400_000).length;
    expect(goneForTwoWeeks / lastSeen.size).toBeGreaterThan(0.1);
    expect(goneForTwoWeeks / lastSeen.size).toBeLessThan(0.6);
  });

  it('refuses options it cannot honour', () => {
    expect(() => new EventGenerator({ seed: 1, users: 0 })).toThrow(/users must be a positive integer, got 0/);
    expect(() => new EventGenerator({ seed: 1, users: 5, days: 0 })).toThrow(/days must be > 0, got 0/);
  });
});

describe('writeJsonLines', () => {
  it('writes one wire-format event per line, the same as the generator yields', async () => {
    const { PassThrough } = await import('node:stream');
    const { writeJsonLines } = await import('./jsonl.js');
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (c: Buffer) => (text += c.toString()));
    const n = await writeJsonLines({ seed: 8, users: 100, days: 3 }, sink, 500);
    sink.end();
    const lines = text.trimEnd().split('\n');
    expect(n).toBe(500);
    expect(lines).toEqual([...new EventGenerator({ seed: 8, users: 100, days: 3 })].slice(0, 500).map(toWire));
  });
});
