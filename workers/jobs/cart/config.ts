/**
 * The cart job's part of the worker configuration: its window and threshold
 * (the seed's ABANDON_WINDOW_MIN and CART_ABANDON_THRESHOLD, defaults as in the
 * CRD's spec.cart) and the optional email alerts.
 */
import type { JobConfigFragment } from '../../../lib/worker-config/config.js';
import type { Infer } from '../../../lib/worker-config/schema-kit.js';

const port = { type: 'integer', minimum: 1, maximum: 65535 } as const;

export const cartSection = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    abandonWindowMinutes: { type: 'number', exclusiveMinimum: 0, default: 60, 'x-env': 'ABANDON_WINDOW_MIN' },
    abandonThreshold: { type: 'number', minimum: 0, maximum: 1, default: 0.75, 'x-env': 'CART_ABANDON_THRESHOLD' },
  },
} as const;

/** Absent: no email is sent (alerts still land in Redis). */
export const alertsSection = {
  type: 'object',
  additionalProperties: false,
  required: ['smtp', 'from', 'to'],
  properties: {
    smtp: {
      type: 'object',
      additionalProperties: false,
      required: ['host'],
      properties: {
        host: { type: 'string', minLength: 1, 'x-host': true, 'x-env': 'SMTP_HOST' },
        port: { ...port, default: 587, 'x-env': 'SMTP_PORT' },
        secure: { type: 'boolean', default: false },
      },
    },
    from: { type: 'string', minLength: 3 },
    to: { type: 'array', minItems: 1, items: { type: 'string', minLength: 3 } },
    /**
     * at-most-once: an alert whose sender died mid-send is never sent again
     * (it may be lost); at-least-once: it is sent again with the same
     * Message-ID (it may arrive twice).
     */
    delivery: { enum: ['at-most-once', 'at-least-once'], default: 'at-most-once' },
  },
} as const;

export type CartSettings = Infer<typeof cartSection>;
export type AlertSettings = Infer<typeof alertsSection>;
export type AlertDelivery = AlertSettings['delivery'];

export const cartConfig: JobConfigFragment = {
  type: 'cart',
  sections: { cart: cartSection, alerts: alertsSection },
  modelPathEnv: 'CART_MODEL_PATH',
};
