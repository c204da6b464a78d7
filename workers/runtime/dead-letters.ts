/** Malformed records go to the dead-letter topic with their reason and origin. */
import { appendFileSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
 * The durable side of kept dead letters: one append-only file per partition
 * in the checkpoint directory (`<partition>.dead-letters.jsonl`, each line
 * fsynced before the batch that produced it can be checkpointed). On restore
 * only the entries below the restored offset are kept: the others belong to
 * records that will be read, and dead-lettered, again.
 */
export class DeadLetterJournal {
  constructor(private readonly dir: string) {}

  private file(partition: number): string {
    return join(this.dir, `${partition}.dead-letters.jsonl`);
  }

  append(partition: number, entries: PendingDeadLetter[]): void {
    if (entries.length === 0) return;
    const fd = openSync(this.file(partition), 'a', 0o644);
    try {
      appendFileSync(fd, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The entries still owed for a partition restored at `nextOffset` (-1: no checkpoint, nothing owed). */
  load(partition: number, nextOffset: number): PendingDeadLetter[] {
    let text: string;
    try {
      text = readFileSync(this.file(partition), 'utf8');
    } catch {
      return [];
    }
    const seen = new Set<string>();
    const owed: PendingDeadLetter[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let e: PendingDeadLetter;
      try {
        e = JSON.parse(line) as PendingDeadLetter;
      } catch {
        continue; // a line torn by a crash: its batch was not checkpointed, so it is read again
      }
      if (e.offset < nextOffset && !seen.has(e.key)) {
        seen.add(e.key);
        owed.push(e);
      }
    }
    this.rewrite(partition, owed);
    return owed;
  }

  /** Everything of the partition reached the dead-letter topic. */
  clear(partition: number): void {
    rmSync(this.file(partition), { force: true });
  }

  private rewrite(partition: number, entries: PendingDeadLetter[]): void {
    if (entries.length === 0) return this.clear(partition);
    const tmp = `${this.file(partition)}.${process.pid}.tmp`;
    writeFileSync(tmp, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    renameSync(tmp, this.file(partition));
  }
}

/**
 * A dead letter waiting in the checkpoint directory because the dead-letter topic could
 * not be written: the record as it will be sent (the value base64, or dropped
 * past the cap), so a crash loses neither its offset nor its reason.
 */
export interface PendingDeadLetter {
  /** Offset of the malformed record in its partition. */
  offset: number;
  key: string;
  /** base64 of the original value; absent when the value was dropped (the offset and reason stay). */
  value?: string | null;
  headers: Record<string, string>;
}

/** Past this many pending dead letters per partition, new ones keep only their origin and reason (no value). */
export const PENDING_VALUES_CAP = 1_000;

export function toPending(record: OutgoingRecord, keepValue: boolean): PendingDeadLetter {
  const value = record.value === null ? null : Buffer.from(record.value).toString('base64');
  const headers = { ...(record.headers ?? {}) };
  return { offset: Number(headers[DLQ_HEADERS.offset]), key: String(record.key), value: keepValue ? value : undefined, headers };
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
  journal: DeadLetterJournal;
  timeoutMs?: number;
}

/**
 * The dead letters of one worker. A batch's dead letters are sent before its
 * results are delivered, as before; but when the dead-letter topic cannot be
 * written (missing, not authorised, broker trouble) they are kept with the
 * partition's state, journalled beside its checkpoint, and consumption goes on, so
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

  /** A batch's dead letters: sent, or kept in `pending` and journalled (durable before the batch's offsets are). */
  async deliver(partition: number, pending: PendingDeadLetter[], records: OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    // Order per partition: while some are kept, new ones queue behind them.
    if (pending.length === 0 && !this.o.stalled() && (await this.trySend(records))) return;
    const kept = records.map((r, i) => toPending(r, pending.length + i < PENDING_VALUES_CAP));
    this.o.journal.append(partition, kept);
    pending.push(...kept);
  }

  /** Sends what a partition kept; true when `pending` was emptied. */
  async flush(partition: number, pending: PendingDeadLetter[]): Promise<boolean> {
    if (pending.length === 0) return false;
    const records = pending.map(fromPending);
    if (!(await this.trySend(records))) return false;
    pending.length = 0;
    this.o.journal.clear(partition);
    return true;
  }
}
