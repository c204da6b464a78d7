/** Fields to HSET into `<prefix>user:<userId>`. Values are computed from events only, so replays rewrite the same values. */
export interface UserWrite {
  userId: string;
  fields: Record<string, string>;
}

/** A hash written beside the user hashes (cart: `alert:<cartId>`), idempotently. */
export interface RecordWrite {
  key: string;
  fields: Record<string, string>;
  /** Fields set only where absent: a replay must not reset them (cart: the email status). */
  ifAbsent?: Record<string, string>;
  /** Adds `member` to the sorted set `key` with `score` (cart: the `alerts` index by abandonment time). */
  index?: { key: string; score: number; member: string };
}

/** The state of an exactly-once marker (cart: one alert email), as recorded where the results go. */
export type OnceClaim =
  /** This worker may act now (nobody did, or an earlier attempt failed for sure before delivery). */
  | { kind: 'claimed' }
  /** A previous run did it: a replay must not do it again. */
  | { kind: 'sent' }
  /** At least once: an earlier attempt died while acting; this worker took the claim over and acts again. */
  | { kind: 'taken-over'; holder: string }
  /** A previous attempt died while acting: it may have happened, so it is not done again. */
  | { kind: 'uncertain'; holder: string };

export type OnceOutcome = 'sent' | 'failed' | 'uncertain';

/**
 * Where job results go: Redis in production, memory for `sluice demo` and
 * unit tests. Every write is idempotent: the runtime replays after a crash and
 * retries after a failure. Keys are the job's; the sink prepends the prefix.
 */
export interface ResultSink {
  /** HSET of each user's fields (and the TTL), in one round trip. */
  writeUsers(writes: readonly UserWrite[]): Promise<void>;
  /** Other hashes (and the TTL), in one round trip. */
  writeRecords(records: readonly RecordWrite[]): Promise<void>;
  /**
   * Takes the marker `key` for `holder`: at most one holder, ever, once it is
   * 'sent'. `takeOver` (at-least-once delivery) also takes a marker whose
   * holder died mid-act (or whose outcome was unknown).
   */
  claimOnce(key: string, holder: string, takeOver?: boolean): Promise<OnceClaim>;
  /**
   * After the attempt: 'sent' closes the marker for good; 'failed' (nothing
   * happened) lets a retry claim again; 'uncertain' (it may have happened)
   * closes it without a retry. `status` also records the outcome in a hash field.
   */
  finishOnce(key: string, holder: string, outcome: OnceOutcome, status?: { key: string; field: string }): Promise<void>;
  close(): Promise<void>;
}
