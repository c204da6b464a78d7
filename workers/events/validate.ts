import { EVENT_TYPES, type EventType, type ParseResult, type UserEvent } from './types.js';

/** Bounds that catch seconds-instead-of-milliseconds and garbage numbers. */
const MIN_EVENT_TIME = Date.UTC(2000, 0, 1);
const MAX_EVENT_TIME = Date.UTC(2100, 0, 1);
const MAX_ID_LENGTH = 256;
const MAX_QUANTITY = 10_000;

/**
 * Strict ISO-8601 date-time with a zone: `2026-01-05T10:00:00Z`,
 * `2026-01-05T10:00:00.123+02:00`. A timestamp without a zone is refused: the
 * workers would otherwise read it in their own time zone.
 */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/**
 * Epoch ms of a strict ISO-8601 date-time, or NaN. Parsed here rather than by
 * Date.parse, which quietly rolls 2026-02-30 over to March 2.
 */
function parseIsoTime(v: string): number {
  const m = ISO_8601.exec(v);
  if (!m) return NaN;
  const year = +m[1];
  const month = +m[2];
  const day = +m[3];
  const hour = +m[4];
  const minute = +m[5];
  const second = m[6] === undefined ? 0 : +m[6];
  const ms = m[7] === undefined ? 0 : +m[7].padEnd(3, '0').slice(0, 3);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return NaN;
  let offset = 0;
  if (m[8] === undefined) {
    const oh = +m[10];
    const om = +m[11];
    if (oh > 23 || om > 59) return NaN;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}

const TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);
/** Events that name a product, and so must carry `product_id`. */
const NEEDS_PRODUCT: ReadonlySet<EventType> = new Set(['product_view', 'add_to_cart', 'remove_from_cart']);

const KNOWN_FIELDS = 'user_id, event_type, event_time, session_id, product_id, cart_id, price, quantity';

class Rejected {
  constructor(readonly reason: string) {}
}

/**
 * Parses one Kafka message value into a UserEvent. Never throws: a malformed
 * event yields `{ ok: false, reason }`, where the reason names the field and
 * what is wrong with it, because it is what the dead-letter topic shows.
 */
export function parseEvent(value: Buffer | string | null): ParseResult {
  if (value === null || value === undefined) return { ok: false, reason: 'empty message: the value is null (a tombstone?), expected a JSON event' };
  const text = typeof value === 'string' ? value : value.toString('utf8');
  if (text.trim() === '') return { ok: false, reason: 'empty message: expected a JSON event' };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  try {
    return { ok: true, event: toEvent(doc) };
  } catch (err) {
    if (err instanceof Rejected) return { ok: false, reason: err.reason };
    return { ok: false, reason: `unexpected validator error: ${String(err)}` };
  }
}

function toEvent(doc: unknown): UserEvent {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new Rejected(`event must be a JSON object with fields ${KNOWN_FIELDS}; got ${describe(doc)}`);
  }
  const o = doc as Record<string, unknown>;
  const eventType = readEventType(o.event_type);
  const event: UserEvent = { userId: readUserId(o.user_id), eventType, eventTime: readEventTime(o.event_time) };
  const sessionId = readOptionalId(o, 'session_id');
  if (sessionId !== undefined) event.sessionId = sessionId;
  const productId = readOptionalId(o, 'product_id');
  if (productId !== undefined) event.productId = productId;
  else if (NEEDS_PRODUCT.has(eventType)) throw new Rejected(`product_id: required for ${eventType} events`);
  const cartId = readOptionalId(o, 'cart_id');
  if (cartId !== undefined) event.cartId = cartId;
  const price = readPrice(o.price);
  if (price !== undefined) event.price = price;
  else if (eventType === 'add_to_cart') throw new Rejected('price: required for add_to_cart events (unit price, a number >= 0)');
  const quantity = readQuantity(o.quantity);
  if (quantity !== undefined) event.quantity = quantity;
  return event;
}

function readUserId(v: unknown): string {
  if (v === undefined || v === null) throw new Rejected('user_id: required');
  // Numeric ids are common upstream (`user:123` in Redis); they are kept as text.
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return String(v);
    throw new Rejected(`user_id: a number must be a non-negative integer, got ${v}`);
  }
  if (typeof v !== 'string') throw new Rejected(`user_id: must be a string or an integer, got ${describe(v)}`);
  return checkId('user_id', v);
}

function readEventType(v: unknown): EventType {
  if (v === undefined || v === null) throw new Rejected('event_type: required');
  if (typeof v !== 'string') throw new Rejected(`event_type: must be a string, got ${describe(v)}`);
  if (!TYPES.has(v)) throw new Rejected(`event_type: unknown type ${JSON.stringify(clip(v))}; expected one of ${EVENT_TYPES.join(', ')}`);
  return v as EventType;
}

function readEventTime(v: unknown): number {
  if (v === undefined || v === null) throw new Rejected('event_time: required (ISO-8601 timestamp with a zone, or epoch milliseconds)');
  let t: number;
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || !Number.isInteger(v)) throw new Rejected(`event_time: epoch milliseconds must be an integer, got ${v}`);
    t = v;
  } else if (typeof v === 'string') {
    t = parseIsoTime(v);
    if (Number.isNaN(t)) throw new Rejected(`event_time: not an ISO-8601 timestamp or epoch milliseconds: ${JSON.stringify(clip(v))} (a timestamp needs a zone, e.g. 2026-01-05T10:00:00Z)`);
  } else {
    throw new Rejected(`event_time: not an ISO-8601 timestamp or epoch milliseconds: got ${describe(v)}`);
  }
  if (t < MIN_EVENT_TIME || t >= MAX_EVENT_TIME) {
    const hint = typeof v === 'number' && v * 1000 >= MIN_EVENT_TIME && v * 1000 < MAX_EVENT_TIME ? ' (epoch seconds? the field takes milliseconds)' : '';
    throw new Rejected(`event_time: ${JSON.stringify(v)} is outside 2000-01-01..2100-01-01${hint}`);
  }
  return t;
}

function readOptionalId(o: Record<string, unknown>, field: string): string | undefined {
  const v = o[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v !== 'string') throw new Rejected(`${field}: must be a string, got ${describe(v)}`);
  return checkId(field, v);
}

function checkId(field: string, v: string): string {
  if (v.length === 0) throw new Rejected(`${field}: must not be empty`);
  if (v.length > MAX_ID_LENGTH) throw new Rejected(`${field}: longer than ${MAX_ID_LENGTH} characters (${v.length})`);
  return v;
}

function readPrice(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Rejected(`price: must be a number, got ${describe(v)}`);
  if (v < 0) throw new Rejected(`price: must be >= 0, got ${v}`);
  return v;
}

function readQuantity(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Rejected(`quantity: must be an integer, got ${describe(v)}`);
  if (v < 1 || v > MAX_QUANTITY) throw new Rejected(`quantity: must be between 1 and ${MAX_QUANTITY}, got ${v}`);
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(clip(v))}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}
