/** Malformed records go to the dead-letter topic with their reason and origin. */
import type { ConsumedRecord, OutgoingRecord } from '../../lib/kafka/client.js';

export const DLQ_HEADERS = {
  reason: 'sluice-dlq-reason',
  topic: 'sluice-source-topic',
  partition: 'sluice-source-partition',
  offset: 'sluice-source-offset',
  job: 'sluice-job',
} as const;

/** The dead letter of record `r` of `topic`/`partition`: the original key, value and headers, plus where it came from and why. */
export function deadLetter(job: string, topic: string, partition: number, r: ConsumedRecord, reason: string): OutgoingRecord {
  return {
    // Keyed by origin, so a consumer of the DLQ can drop the duplicates a replay may add.
    key: `${topic}/${partition}/${r.offset}`,
    value: r.value,
    headers: {
      ...r.headers,
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.topic]: topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: String(r.offset),
      [DLQ_HEADERS.job]: job,
    },
  };
}

/**
 * A dead letter waiting in the checkpoint because the dead-letter topic could
 * not be written: the record as it will be sent (the value base64, or dropped
 * past the cap), so a crash loses neither its offset nor its reason.
 */
export interface PendingDeadLetter {
  key: string;
  /** base64 of the original value; absent when the value was dropped (the offset and reason stay). */
  value?: string | null;
  headers: Record<string, string>;
}

/** Past this many pending dead letters per partition, new ones keep only their origin and reason (no value). */
export const PENDING_VALUES_CAP = 1_000;

export function toPending(record: OutgoingRecord, keepValue: boolean): PendingDeadLetter {
  const value = record.value === null ? null : Buffer.from(record.value).toString('base64');
  return { key: String(record.key), value: keepValue ? value : undefined, headers: { ...(record.headers ?? {}) } };
}

export function fromPending(p: PendingDeadLetter): OutgoingRecord {
  const headers = p.value === undefined ? { ...p.headers, 'sluice-dlq-value-dropped': 'true' } : p.headers;
  return { key: p.key, value: p.value ? Buffer.from(p.value, 'base64') : null, headers };
}

export interface DeadLetterOutboxOptions {
  /** Sends records to the dead-letter topic; must fail within a few seconds (a quick producer). */
  send: (records: OutgoingRecord[]) => Promise<void>;
  /** The dead-letter topic could not be written (a stall), or could again. */
  onFailure: (err: Error) => void;
  onSuccess: () => void;
  /** Records sent (for sluice_dlq_events_total). */
  onSent: (count: number) => void;
  /** Whether the dead-letter topic is known not to answer now: new dead letters are kept without trying. */
  stalled: () => boolean;
  timeoutMs?: number;
}

/**
 * The dead letters of one worker. A batch's dead letters are sent before its
 * results are delivered, as before; but when the dead-letter topic cannot be
 * written (missing, not authorised, broker trouble) they are kept with the
 * partition's state, written into its checkpoint, and consumption goes on, so
 * good events never wait behind bad ones. `flush` (from the worker's tick)
 * sends what was kept once the topic answers again, oldest first.
 */
export class DeadLetterOutbox {
  constructor(private readonly o: DeadLetterOutboxOptions) {}

  private async trySend(records: OutgoingRecord[]): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.o.send(records),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.o.timeoutMs ?? 5_000} ms`)), this.o.timeoutMs ?? 5_000);
        }),
      ]);
      this.o.onSent(records.length);
      this.o.onSuccess();
      return true;
    } catch (err) {
      this.o.onFailure(err instanceof Error ? err : new Error(String(err)));
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A batch's dead letters: sent, or kept in `pending` (which the checkpoint carries). */
  async deliver(pending: PendingDeadLetter[], records: OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Order per partition: while some are kept, new ones queue behind them.
    if (pending.length === 0 && !this.o.stalled() && (await this.trySend(records))) return;
    for (const r of records) pending.push(toPending(r, pending.length < PENDING_VALUES_CAP));
  }

  /** Sends what a partition kept; true when `pending` was emptied (the state changed: checkpoint it). */
  async flush(pending: PendingDeadLetter[]): Promise<boolean> {
    if (pending.length === 0) return false;
    const records = pending.map(fromPending);
    if (!(await this.trySend(records))) return false;
    pending.length = 0;
    return true;
  }
}
