/**
 * Cart alert emails, once per abandoned cart, with a per-job choice for the
 * one moment that cannot be exactly once (a crash while SMTP has the message).
 *
 * The checkpoint cannot hold "sent" (a crash after sending and before the
 * next checkpoint replays the batch), so the marker lives in the result store:
 * before sending, the worker claims `alert:<cartId>:email` with its own holder
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
import type { AlertDelivery, WorkerConfig } from '../../../lib/worker-config/config.js';
import type { CartAlert } from '../../runtime/job.js';
import type { WorkerMetrics } from '../../runtime/metrics.js';
import type { ResultSink } from '../../runtime/sink.js';

export interface Mailer {
  send(message: { from: string; to: string[]; subject: string; text: string; messageId: string }): Promise<void>;
  close(): void;
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  constructor(smtp: NonNullable<WorkerConfig['alerts']>['smtp'], credentials: { username?: string; password?: string }) {
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

export class AlertDispatcher {
  constructor(
    private readonly sink: ResultSink,
    private readonly mailer: Mailer | undefined,
    private readonly settings: { from: string; to: string[]; delivery?: AlertDelivery } | undefined,
    private readonly holder: string,
    private readonly metrics: WorkerMetrics,
    private readonly logger: Logger,
  ) {}

  /**
   * Records and emails the alerts; throws (to be retried) when the store or
   * SMTP fails. Idempotent. `progress` runs after each email (the Kafka
   * heartbeat: a batch with many alerts must not look like a dead member).
   */
  async dispatch(alerts: readonly CartAlert[], progress?: () => Promise<void>): Promise<void> {
    if (alerts.length === 0) return;
    if (!this.mailer || !this.settings) {
      await this.sink.recordAlerts(alerts, 'disabled');
      this.metrics.alerts.inc({ outcome: 'recorded' }, alerts.length);
      return;
    }
    await this.sink.recordAlerts(alerts, 'pending');
    for (const alert of alerts) {
      await this.emailOnce(alert);
      await progress?.();
    }
  }

  private get atLeastOnce(): boolean {
    return this.settings?.delivery === 'at-least-once';
  }

  private async emailOnce(alert: CartAlert): Promise<void> {
    const claim = await this.sink.claimAlert(alert.cartId, this.holder, this.atLeastOnce);
    if (claim.kind === 'sent') {
      this.metrics.alerts.inc({ outcome: 'already_sent' });
      return;
    }
    if (claim.kind === 'uncertain') {
      // Record what is known in the alert itself (and close the dead holder's claim): it may or may not have arrived.
      if (claim.holder !== 'uncertain') await this.sink.finishAlert(alert.cartId, claim.holder, 'uncertain');
      this.metrics.alerts.inc({ outcome: 'uncertain' });
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
        await this.sink.finishAlert(alert.cartId, this.holder, 'failed');
        this.metrics.alerts.inc({ outcome: 'resent' });
        throw new Error(`SMTP send of alert for cart ${alert.cartId} ended without an answer (${(err as Error).message}): sending again`);
      }
      if (certainlyNotDelivered(err)) {
        await this.sink.finishAlert(alert.cartId, this.holder, 'failed');
        throw new Error(`SMTP send of alert for cart ${alert.cartId} failed: ${(err as Error).message}`);
      }
      // The server may have accepted it: mark it so that nobody, this worker included, sends it again.
      await this.sink.finishAlert(alert.cartId, this.holder, 'uncertain');
      this.metrics.alerts.inc({ outcome: 'uncertain' });
      this.logger.error({ cartId: alert.cartId, err: (err as Error).message }, 'alert email outcome unknown (connection lost mid-send): not resent');
      return;
    }
    this.metrics.alerts.inc({ outcome: claim.kind === 'taken-over' ? 'resent' : 'sent' });
    await this.sink.finishAlert(alert.cartId, this.holder, 'sent');
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
