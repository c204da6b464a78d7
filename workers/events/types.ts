/**
 * A user event as the workers see it after validation (see docs/events.md for
 * the wire format on the `user_events` topic). Times are epoch milliseconds.
 */
export const EVENT_TYPES = [
  'session_start',
  'page_view',
  'product_view',
  'search',
  'add_to_cart',
  'remove_from_cart',
  'checkout_start',
  'purchase',
  'support_contact',
  'session_end',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface UserEvent {
  userId: string;
  eventType: EventType;
  eventTime: number;
  sessionId?: string;
  productId?: string;
  cartId?: string;
  /** Unit price in the shop's currency, for cart and purchase events. */
  price?: number;
  quantity?: number;
}

export type ParseResult =
  | { ok: true; event: UserEvent }
  | { ok: false; reason: string };
