/**
 * Cart alert emails, once per abandoned cart, with a per-job choice for the
 * one moment that cannot be exactly once (a crash while SMTP has the message).
 *
 * The checkpoint cannot hold "sent" (a crash after sending and before the
 * next checkpoint replays the batch), so the marker lives in the result store:
 * before sending, the worker claims `alert_email:<cartId>` with its own holder
 * id; after the SMTP server accepted the message the marker becomes `sent`.
 * A replay finds `sent` and skips. If the send failed for sure (connection
 * refused, a 4xx/5xx reply) the marker becomes `failed` and the retry claims it
 * again. If a worker dies between the claim and `sent`, the marker keeps the
 * dead holder's id. At most once (the default), nobody sends again: an alert
 * may be lost in that window of one SMTP round trip, never sent twice
 * (counted as `uncertain`). At least once, the next attempt takes the claim
 * over and sends again: never lost, but it may arrive twice (counted as
 * `resent`). The Message-ID is derived from the cart, so a mail system or a
 * downstream can drop the repeat.
 */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { OutputStage } from '../../runtime/job.js';
import type { MemoryStore } from '../../runtime/memory-store.js';
import type { RecordWrite, ResultSink } from '../../runtime/sink.js';
import type { AlertDelivery, AlertSettings } from './config.js';

/** One abandoned cart scored at or above the threshold: the cart job's own output. */
export interface CartAlert {
  cartId: string;
  userId: string;
  score: number;
  items: number;
  value: number;
  /** Last cart activity and the moment the cart counted as abandoned (event time, epoch ms). */
  lastActivity: number;
  abandonedAt: number;
  modelVersion: string;
}

/** Keys of an alert (behind redis.keyPrefix): the record, the index of all alerts, the email's exactly-once marker. */
export const alertKeys = {
  record: (cartId: string): string => `alert:${cartId}`,
  index: 'alerts',
  email: (cartId: string): string => `alert_email:${cartId}`,
} as const;

/** `sluice_alerts_total{outcome}`, on the worker's registry. */
export function alertCounter(registry: Registry): Counter<'outcome'> {
  return new Counter({
    name: 'sluice_alerts_total',
    help: 'Cart alerts by outcome: sent, already_sent (a replay), uncertain (at-most-once: a previous attempt died mid-send, not resent), resent (at-least-once: sent again after an attempt with no answer), recorded (no SMTP configured)',
    labelNames: ['outcome'],
    registers: [registry],
  });
}

/** The alert's record: what was scored and when, its email status set only where absent, its place in the index. */
export function alertRecord(a: CartAlert, email: 'pending' | 'disabled'): RecordWrite {
  return {
    key: alertKeys.record(a.cartId),
    fields: {
      cart_id: a.cartId,
      user_id: a.userId,
      score: a.score.toFixed(6),
      cart_items: String(a.items),
      cart_value: a.value.toFixed(2),
      last_activity: new Date(a.lastActivity).toISOString(),
      abandoned_at: new Date(a.abandonedAt).toISOString(),
      model_version: a.modelVersion,
    },
    // The email status is only set when absent: a replay must not reset 'sent'.
    ifAbsent: { email },
    index: { key: alertKeys.index, score: a.abandonedAt, member: a.cartId },
  };
}

export interface StoredAlert extends CartAlert {
  email: string;
}

/** The alerts a MemoryStore holds (what `sluice demo` shows), newest abandonment first. */
export function storedAlerts(store: MemoryStore, n = Infinity): StoredAlert[] {
  const out: StoredAlert[] = [];
  for (const [cartId] of store.indexes.get(alertKeys.index) ?? []) {
    const h = store.records.get(alertKeys.record(cartId));
    if (!h) continue;
    out.push({
      cartId,
      userId: h.user_id ?? '',
      score: Number(h.score),
      items: Number(h.cart_items),
      value: Number(h.cart_value),
      lastActivity: Date.parse(h.last_activity ?? ''),
      abandonedAt: Date.parse(h.abandoned_at ?? ''),
      modelVersion: h.model_version ?? '',
      email: h.email ?? '',
    });
  }
  return out.sort((a, b) => b.abandonedAt - a.abandonedAt).slice(0, n);
}

export interface Mailer {
  send(message: { from: string; to: string[]; subject: string; text: string; messageId: string }): Promise<void>;
  close(): void;
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(smtp: AlertSettings['smtp'], credentials: { username?: string; password?: string }) {
    this.transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      // One kept-open connection: a new SMTP session per alert costs a handshake each.
      pool: true,
      maxConnections: 1,
      auth: credentials.username ? { user: credentials.username, pass: credentials.password ?? '' } : undefined,
      connectionTimeout: 5_000,
      greetingTimeout: 5_000,
      socketTimeout: 15_000,
    });
  }

  async send(m: { from: string; to: string[]; subject: string; text: string; messageId: string }): Promise<void> {
    await this.transport.sendMail({ from: m.from, to: m.to, subject: m.subject, text: m.text, messageId: m.messageId });
  }

  close(): void {
    this.transport.close();
  }
}

/** SMTP commands before the message body: a failure there cannot have delivered anything. */
const BEFORE_DATA = /^(CONN|EHLO|HELO|LHLO|STARTTLS|AUTH|MAIL|RCPT)/;

/** Errors after which the message was certainly not accepted by the server, so a retry cannot duplicate it. */
export function certainlyNotDelivered(err: unknown): boolean {
  const e = err as { code?: string; responseCode?: number; command?: string; syscall?: string };
  // The server answered with a refusal (4xx/5xx): it did not take the message.
  if (typeof e.responseCode === 'number') return true;
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo') return true;
  if (typeof e.command === 'string' && BEFORE_DATA.test(e.command)) return true;
  return ['ECONNECTION', 'EDNS', 'EAUTH', 'ETLS', 'EENVELOPE'].includes(e.code ?? '');
}

/** The cart job's output stage: records each alert, then emails it once (at most or at least, per alerts.delivery). */
export class AlertDispatcher implements OutputStage<CartAlert> {
  readonly target = 'alerts';

  constructor(
    private readonly sink: ResultSink,
    private readonly mailer: Mailer | undefined,
    private readonly settings: { from: string; to: string[]; delivery?: AlertDelivery } | undefined,
    private readonly holder: string,
    private readonly counter: Counter<'outcome'>,
    private readonly logger: Logger,
  ) {}

  async deliver(alerts: readonly CartAlert[], progress?: () => Promise<void>): Promise<void> {
    await this.dispatch(alerts, progress);
  }

  close(): void {
    this.mailer?.close();
  }

  /**
   * Records and emails the alerts; throws (to be retried) when the store or
   * SMTP fails. Idempotent. `progress` runs after each email (the Kafka
   * heartbeat: a batch with many alerts must not look like a dead member).
   */
  async dispatch(alerts: readonly CartAlert[], progress?: () => Promise<void>): Promise<void> {
    if (alerts.length === 0) return;
    if (!this.mailer || !this.settings) {
      await this.sink.writeRecords(alerts.map((a) => alertRecord(a, 'disabled')));
      this.counter.inc({ outcome: 'recorded' }, alerts.length);
      return;
    }
    await this.sink.writeRecords(alerts.map((a) => alertRecord(a, 'pending')));
    for (const alert of alerts) {
      await this.emailOnce(alert);
      await progress?.();
    }
  }

  private get atLeastOnce(): boolean {
    return this.settings?.delivery === 'at-least-once';
  }

  private async emailOnce(alert: CartAlert): Promise<void> {
    const claim = await this.sink.claimOnce(alertKeys.email(alert.cartId), this.holder, this.atLeastOnce);
    if (claim.kind === 'sent') {
      this.counter.inc({ outcome: 'already_sent' });
      return;
    }
    if (claim.kind === 'uncertain') {
      // Record what is known in the alert itself (and close the dead holder's claim): it may or may not have arrived.
      if (claim.holder !== 'uncertain') await this.finish(alert, 'uncertain', claim.holder);
      this.counter.inc({ outcome: 'uncertain' });
      this.logger.warn({ cartId: alert.cartId, holder: claim.holder }, 'alert email not sent: an earlier attempt died while sending, it may have been delivered');
      return;
    }
    if (claim.kind === 'taken-over') {
      this.logger.warn({ cartId: alert.cartId, holder: claim.holder }, 'alert email sent again: an earlier attempt died while sending (at-least-once: it may arrive twice, with the same Message-ID)');
    }
    try {
      await this.mailer!.send(this.message(alert));
    } catch (err) {
      if (this.atLeastOnce && !certainlyNotDelivered(err)) {
        // It may have been delivered; at least once means: send it again (same Message-ID) rather than risk losing it.
        await this.finish(alert, 'failed');
        this.counter.inc({ outcome: 'resent' });
        throw new Error(`SMTP send of alert for cart ${alert.cartId} ended without an answer (${(err as Error).message}): sending again`);
      }
      if (certainlyNotDelivered(err)) {
        await this.finish(alert, 'failed');
        throw new Error(`SMTP send of alert for cart ${alert.cartId} failed: ${(err as Error).message}`);
      }
      // The server may have accepted it: mark it so that nobody, this worker included, sends it again.
      await this.finish(alert, 'uncertain');
      this.counter.inc({ outcome: 'uncertain' });
      this.logger.error({ cartId: alert.cartId, err: (err as Error).message }, 'alert email outcome unknown (connection lost mid-send): not resent');
      return;
    }
    this.counter.inc({ outcome: claim.kind === 'taken-over' ? 'resent' : 'sent' });
    await this.finish(alert, 'sent');
  }

  /** Closes the email's marker (this worker's claim, or `holder`'s) and records the outcome in the alert's `email` field. */
  private finish(alert: CartAlert, outcome: 'sent' | 'failed' | 'uncertain', holder = this.holder): Promise<void> {
    return this.sink.finishOnce(alertKeys.email(alert.cartId), holder, outcome, { key: alertKeys.record(alert.cartId), field: 'email' });
  }

  private message(a: CartAlert): { from: string; to: string[]; subject: string; text: string; messageId: string } {
    const value = a.value.toFixed(2);
    return {
      from: this.settings!.from,
      to: this.settings!.to,
      messageId: `<cart-${encodeURIComponent(a.cartId)}@sluice.alerts>`,
      subject: `Cart abandoned: user ${a.userId}, cart ${a.cartId} (${(a.score * 100).toFixed(0)}% likely lost)`,
      text: [
        `User ${a.userId} left cart ${a.cartId} with ${a.items} item(s) worth ${value}.`,
        `Last cart activity: ${new Date(a.lastActivity).toISOString()}; abandoned at ${new Date(a.abandonedAt).toISOString()}.`,
        `Abandonment probability ${a.score.toFixed(3)} (model ${a.modelVersion}).`,
        `cart_id: ${a.cartId}`,
        `user_id: ${a.userId}`,
      ].join('\n'),
    };
  }
}
