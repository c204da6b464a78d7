import type { UserEvent } from './types.js';

/**
 * The JSON put on the `user_events` topic for one event (see docs/events.md).
 * Field names are snake_case, as in the system Sluice replaces; the event time
 * is written as an ISO-8601 UTC timestamp so that a person reading the topic
 * can see it. Optional fields are left out rather than written as null.
 */
export function toWire(e: UserEvent): string {
  let s = `{"user_id":${JSON.stringify(e.userId)},"event_type":"${e.eventType}","event_time":"${new Date(e.eventTime).toISOString()}"`;
  if (e.sessionId !== undefined) s += `,"session_id":${JSON.stringify(e.sessionId)}`;
  if (e.productId !== undefined) s += `,"product_id":${JSON.stringify(e.productId)}`;
  if (e.cartId !== undefined) s += `,"cart_id":${JSON.stringify(e.cartId)}`;
  if (e.price !== undefined) s += `,"price":${e.price}`;
  if (e.quantity !== undefined) s += `,"quantity":${e.quantity}`;
  return s + '}';
}
