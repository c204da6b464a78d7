/**
 * What a worker is waiting on, said once per change: when a dependency stops
 * answering (Redis, SMTP, Kafka, the dead-letter topic) the worker logs one
 * warning naming it and the error, sets `sluice_stalled{on,reason} 1`, and
 * shows it in /status and /readyz's text; when it answers again, one info line
 * says how long the wait was and the gauge goes. `sluice status`, the
 * dashboard and the operator (condition reasons RedisUnreachable,
 * SmtpUnreachable...) read it from there.
 */
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';

export type StallTarget = 'redis' | 'smtp' | 'kafka' | 'dlq';

export interface Stall {
  on: StallTarget;
  /** CamelCase, as a condition reason: RedisUnreachable, SmtpUnreachable, KafkaUnreachable, DeadLetterTopicUnwritable... */
  reason: string;
  message: string;
  /** When the wait began (ISO time). */
  since: string;
}

const NAMES: Record<StallTarget, string> = { redis: 'Redis', smtp: 'the SMTP server', kafka: 'Kafka', dlq: 'the dead-letter topic' };
/** What the wait means for the stream: a DLQ that cannot be written holds up nothing. */
const CONSEQUENCE: Record<StallTarget, string> = {
  redis: 'consumption paused until it answers, nothing is lost',
  smtp: 'consumption paused until it answers, nothing is lost',
  kafka: 'consumption paused until it answers, nothing is lost',
  dlq: 'malformed events are kept beside the checkpoint until it can be written; good events go on',
};

export class Stalls {
  private readonly current = new Map<StallTarget, Stall>();

  constructor(
    private readonly gauge: Gauge<'on' | 'reason'>,
    private readonly logger: Logger,
  ) {}

  /** `on` does not answer: logged (and counted in the gauge) when the wait begins or its reason changes. */
  set(on: StallTarget, reason: string, message: string): void {
    const before = this.current.get(on);
    if (before && before.reason === reason) {
      before.message = message;
      return;
    }
    if (before) this.gauge.remove({ on, reason: before.reason });
    this.current.set(on, { on, reason, message, since: before?.since ?? new Date().toISOString() });
    this.gauge.set({ on, reason }, 1);
    this.logger.warn({ stalled: on, reason, err: message }, `waiting for ${NAMES[on]} (${reason}): ${message}; ${CONSEQUENCE[on]}`);
  }

  /** `on` answered again. */
  clear(on: StallTarget): void {
    const before = this.current.get(on);
    if (!before) return;
    this.current.delete(on);
    this.gauge.remove({ on, reason: before.reason });
    const seconds = Math.round((Date.now() - Date.parse(before.since)) / 1000);
    const what = before.reason === 'TopicNotFound' ? 'the input topic exists' : before.reason === 'DeadLetterTopicMissing' ? 'the dead-letter topic exists' : `${NAMES[on]} answers again`;
    this.logger.info({ stalled: on, reason: before.reason, waitedSeconds: seconds }, `${what} after ${seconds}s; going on`);
  }

  has(on: StallTarget): boolean {
    return this.current.has(on);
  }

  list(): Stall[] {
    return [...this.current.values()].map((s) => ({ ...s }));
  }

  /** One line for /readyz: `waiting for Redis (RedisUnreachable): ...`. */
  describe(): string | undefined {
    const all = this.list();
    if (all.length === 0) return undefined;
    return all.map((s) => `waiting for ${NAMES[s.on]} since ${s.since} (${s.reason}): ${s.message}`).join('; ');
  }
}

interface ErrorLike {
  code?: unknown;
  syscall?: unknown;
  command?: unknown;
  responseCode?: unknown;
  name?: unknown;
  message?: unknown;
}

/** nodemailer's error codes: a failure of the SMTP side, not of Redis. */
const SMTP_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EAUTH', 'ETLS', 'EENVELOPE', 'EMESSAGE', 'EPROTOCOL', 'ESTREAM']);

/** Whether an error of an alert delivery came from SMTP (nodemailer) rather than from the Redis claim. */
export function isSmtpError(err: unknown): boolean {
  const e = (err ?? {}) as ErrorLike;
  return typeof e.responseCode === 'number' || typeof e.command === 'string' || (typeof e.code === 'string' && SMTP_CODES.has(e.code));
}

/** A failed write, as a stall: which dependency it waits on and a reason a condition can carry. */
export function stallOf(target: string, err: unknown): { on: StallTarget; reason: string } {
  if (target === 'kafka' || target === 'dlq') return { on: 'dlq', reason: 'DeadLetterTopicUnwritable' };
  if (target === 'redis') return { on: 'redis', reason: 'RedisUnreachable' };
  // A job's own output stage (cart alerts) writes to Redis and sends mail: the error says which failed.
  if (isSmtpError(err)) {
    const refused = typeof (err as ErrorLike).responseCode === 'number' || (err as ErrorLike).code === 'EAUTH';
    return { on: 'smtp', reason: refused ? 'SmtpRefused' : 'SmtpUnreachable' };
  }
  return { on: 'redis', reason: 'RedisUnreachable' };
}
