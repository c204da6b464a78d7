import { describe, expect, it } from 'vitest';
import { EventGenerator } from './generator.js';
import { parseEvent } from './validate.js';
import { toWire } from './wire.js';

const good = { user_id: 'u1', event_type: 'add_to_cart', event_time: '2026-01-05T10:00:00Z', product_id: 'p9', cart_id: 'c1', price: 12.5, quantity: 2 };
const reason = (v: unknown): string => {
  const r = parseEvent(typeof v === 'string' ? v : JSON.stringify(v));
  if (r.ok) throw new Error(`expected a rejection for ${JSON.stringify(v)}`);
  return r.reason;
};

describe('parseEvent', () => {
  it('accepts a well-formed event and maps it to camelCase with epoch ms', () => {
    const r = parseEvent(Buffer.from(JSON.stringify(good)));
    expect(r).toEqual({
      ok: true,
      event: { userId: 'u1', eventType: 'add_to_cart', eventTime: Date.UTC(2026, 0, 5, 10), productId: 'p9', cartId: 'c1', price: 12.5, quantity: 2 },
    });
  });

  it('accepts epoch milliseconds, zone offsets and numeric user ids', () => {
    const r = parseEvent(JSON.stringify({ user_id: 123, event_type: 'page_view', event_time: 1767607200000 }));
    expect(r.ok && r.event).toEqual({ userId: '123', eventType: 'page_view', eventTime: 1767607200000 });
    const z = parseEvent(JSON.stringify({ user_id: 'a', event_type: 'search', event_time: '2026-01-05T12:00:00.250+02:00' }));
    expect(z.ok && z.event.eventTime).toBe(Date.UTC(2026, 0, 5, 10, 0, 0, 250));
  });

  it.each([
    ['2026-01-05 10:00:00Z', Date.UTC(2026, 0, 5, 10)],
    ['2026-01-05T10:00Z', Date.UTC(2026, 0, 5, 10)],
    ['2026-01-05T12:00:00+0200', Date.UTC(2026, 0, 5, 10)],
    ['2026-01-05T05:30:00-04:30', Date.UTC(2026, 0, 5, 10)],
    ['2026-01-05T10:00:00.123456789Z', Date.UTC(2026, 0, 5, 10, 0, 0, 123)],
    ['2026-01-05T10:00:00.5Z', Date.UTC(2026, 0, 5, 10, 0, 0, 500)],
    ['2028-02-29T00:00:00Z', Date.UTC(2028, 1, 29)],
  ])('reads the ISO-8601 time %s', (text, ms) => {
    const r = parseEvent(JSON.stringify({ user_id: 'a', event_type: 'search', event_time: text }));
    expect(r.ok && r.event.eventTime).toBe(ms);
  });

  it('ignores unknown fields (producers may add some) and nulls in optional ones', () => {
    const r = parseEvent(JSON.stringify({ ...good, referrer: 'x', session_id: null }));
    expect(r.ok).toBe(true);
  });

  it.each([
    ['a null value (tombstone)', null, /empty message: the value is null/],
    ['an empty string', '   ', /empty message/],
    ['broken JSON', '{"user_id": "u1",', /^not JSON: /],
    ['a JSON array', [good], /event must be a JSON object .* got an array/],
    ['a JSON string', '"hello"', /event must be a JSON object .* got the string "hello"/],
    ['a missing user_id', { ...good, user_id: undefined }, /^user_id: required$/],
    ['an empty user_id', { ...good, user_id: '' }, /^user_id: must not be empty$/],
    ['a negative numeric user_id', { ...good, user_id: -4 }, /^user_id: a number must be a non-negative integer, got -4$/],
    ['an object user_id', { ...good, user_id: { id: 1 } }, /^user_id: must be a string or an integer, got an object$/],
    ['an overlong user_id', { ...good, user_id: 'x'.repeat(300) }, /^user_id: longer than 256 characters \(300\)$/],
    ['a missing event_type', { ...good, event_type: undefined }, /^event_type: required$/],
    ['an unknown event_type', { ...good, event_type: 'click' }, /^event_type: unknown type "click"; expected one of session_start, page_view/],
    ['a numeric event_type', { ...good, event_type: 3 }, /^event_type: must be a string, got number 3$/],
    ['a missing event_time', { ...good, event_time: undefined }, /^event_time: required/],
    ['a non-date event_time', { ...good, event_time: 'yesterday' }, /^event_time: not an ISO-8601 timestamp or epoch milliseconds: "yesterday"/],
    ['an event_time without zone', { ...good, event_time: '2026-01-05T10:00:00' }, /^event_time: not an ISO-8601 .* needs a zone/],
    ['an impossible date', { ...good, event_time: '2026-13-45T10:00:00Z' }, /^event_time: not an ISO-8601/],
    ['the 30th of February', { ...good, event_time: '2026-02-30T10:00:00Z' }, /^event_time: not an ISO-8601/],
    ['hour 24', { ...good, event_time: '2026-01-05T24:00:00Z' }, /^event_time: not an ISO-8601/],
    ['a date without a time', { ...good, event_time: '2026-01-05' }, /^event_time: not an ISO-8601/],
    ['a boolean event_time', { ...good, event_time: true }, /^event_time: not an ISO-8601 timestamp or epoch milliseconds: got boolean true$/],
    ['a fractional epoch', { ...good, event_time: 1767607200000.5 }, /^event_time: epoch milliseconds must be an integer/],
    ['epoch seconds', { ...good, event_time: 1767607200 }, /^event_time: 1767607200 is outside 2000-01-01..2100-01-01 \(epoch seconds\? the field takes milliseconds\)$/],
    ['a far-future time', { ...good, event_time: '2199-01-01T00:00:00Z' }, /^event_time: "2199-01-01T00:00:00Z" is outside/],
    ['add_to_cart without product_id', { ...good, product_id: undefined }, /^product_id: required for add_to_cart events$/],
    ['product_view without product_id', { user_id: 'u', event_type: 'product_view', event_time: 1767607200000 }, /^product_id: required for product_view events$/],
    ['add_to_cart without price', { ...good, price: undefined }, /^price: required for add_to_cart events/],
    ['a string price', { ...good, price: '12.50' }, /^price: must be a number, got the string "12.50"$/],
    ['a negative price', { ...good, price: -1 }, /^price: must be >= 0, got -1$/],
    ['a fractional quantity', { ...good, quantity: 1.5 }, /^quantity: must be an integer, got number 1.5$/],
    ['a zero quantity', { ...good, quantity: 0 }, /^quantity: must be between 1 and 10000, got 0$/],
    ['an array session_id', { ...good, session_id: ['s'] }, /^session_id: must be a string, got an array$/],
  ])('rejects %s with a reason naming the problem', (_name, value, expected) => {
    const r = value === null ? parseEvent(null) : parseEvent(typeof value === 'string' ? value : JSON.stringify(value));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(expected);
  });

  it('reads back every generated event exactly as toWire wrote it', () => {
    let n = 0;
    for (const e of new EventGenerator({ seed: 7, users: 50, days: 5 })) {
      const r = parseEvent(toWire(e));
      if (!r.ok) throw new Error(`${r.reason} for ${toWire(e)}`);
      expect(r.event).toEqual(e);
      n++;
    }
    expect(n).toBeGreaterThan(1000);
  });

  it('never throws, whatever the bytes', () => {
    for (const v of ['\u0000', '1', 'true', 'null', '{"user_id":{}}', Buffer.from([0xff, 0xfe, 0x00])]) {
      expect(() => parseEvent(v)).not.toThrow();
      expect(reason(typeof v === 'string' ? v : v.toString('latin1')).length).toBeGreaterThan(5);
    }
  });
});
