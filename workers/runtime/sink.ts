import type { CartAlert, UserWrite } from './job.js';

/** What the state of an alert's email is, as recorded where the results go. */
export type AlertClaim =
  /** This worker may send now (nobody did, or an earlier attempt failed for sure before delivery). */
  | { kind: 'claimed' }
  /** A previous run sent it: a replay must not send again. */
  | { kind: 'sent' }
  /** At least once: an earlier attempt died while sending; this worker took the claim over and sends again. */
  | { kind: 'taken-over'; holder: string }
  /** A previous attempt died while sending: it may have gone out, so it is not sent again. */
  | { kind: 'uncertain'; holder: string };

/**
 * Where job results go: Redis in production, memory for `sluice demo` and
 * unit tests. Every write is idempotent: the runtime replays after a crash and
 * retries after a failure.
 */
export interface ResultSink {
  /** HSET of each user's fields (and the TTL), in one round trip. */
  writeUsers(writes: readonly UserWrite[]): Promise<void>;
  /** The alert records (what was scored, when), idempotent. */
  recordAlerts(alerts: readonly CartAlert[], email: 'pending' | 'disabled'): Promise<void>;
  /**
   * Takes the right to email about one cart: at most one holder, ever, for a
   * cart that was sent. `takeOver` (at-least-once delivery) also takes a claim
   * whose holder died mid-send (or whose outcome was unknown).
   */
  claimAlert(cartId: string, holder: string, takeOver?: boolean): Promise<AlertClaim>;
  /**
   * After the attempt: 'sent' closes the cart for good; 'failed' (nothing was
   * delivered) lets a retry claim again; 'uncertain' (it may have been
   * delivered) closes it without a resend.
   */
  finishAlert(cartId: string, holder: string, outcome: 'sent' | 'failed' | 'uncertain'): Promise<void>;
  close(): Promise<void>;
}
