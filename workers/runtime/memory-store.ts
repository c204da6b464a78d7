/**
 * An in-memory result store with the same semantics as RedisSink, for
 * `sluice demo` (no Redis) and unit tests. It also counts throughput, which
 * the demo shows (each job type's folder has the views of its own results).
 */
import type { UserWrite } from './job.js';
import type { OnceClaim, OnceOutcome, RecordWrite, ResultSink } from './sink.js';

export class MemoryStore implements ResultSink {
  /** The user hashes, by user id. */
  readonly users = new Map<string, Record<string, string>>();
  /** Every other hash, by key. */
  readonly records = new Map<string, Record<string, string>>();
  /** Sorted sets, by key: member to score. */
  readonly indexes = new Map<string, Map<string, number>>();
  private readonly markers = new Map<string, string>();
  private written = 0;
  private events = 0;
  /** (wall ms, cumulative events) samples for a rate over the last seconds. */
  private samples: Array<[number, number]> = [];

  async writeUsers(writes: readonly UserWrite[]): Promise<void> {
    for (const w of writes) {
      const current = this.users.get(w.userId);
      if (current) Object.assign(current, w.fields);
      else this.users.set(w.userId, { ...w.fields });
    }
    this.written += writes.length;
  }

  async writeRecords(records: readonly RecordWrite[]): Promise<void> {
    for (const r of records) {
      const current = this.records.get(r.key) ?? {};
      this.records.set(r.key, { ...r.ifAbsent, ...current, ...r.fields, ...pick(current, Object.keys(r.ifAbsent ?? {})) });
      if (r.index) {
        const index = this.indexes.get(r.index.key) ?? new Map<string, number>();
        index.set(r.index.member, r.index.score);
        this.indexes.set(r.index.key, index);
      }
    }
  }

  async claimOnce(key: string, holder: string, takeOver = false): Promise<OnceClaim> {
    const v = this.markers.get(key);
    if (v === undefined || v === 'failed' || v === holder) {
      this.markers.set(key, holder);
      return { kind: 'claimed' };
    }
    if (v === 'sent') return { kind: 'sent' };
    if (takeOver) {
      this.markers.set(key, holder);
      return { kind: 'taken-over', holder: v };
    }
    return { kind: 'uncertain', holder: v };
  }

  async finishOnce(key: string, holder: string, outcome: OnceOutcome, status?: { key: string; field: string }): Promise<void> {
    if (this.markers.get(key) !== holder) return;
    this.markers.set(key, outcome);
    const record = status ? this.records.get(status.key) : undefined;
    if (record && status && outcome !== 'failed') record[status.field] = outcome;
  }

  async close(): Promise<void> {}

  /** Called by the in-process runner for every event it consumed. */
  countEvents(n: number, now = Date.now()): void {
    this.events += n;
    this.samples.push([now, this.events]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 10_000) this.samples.shift();
  }

  get eventsProcessed(): number {
    return this.events;
  }

  get resultsWritten(): number {
    return this.written;
  }

  /** Events per second over the last `windowMs` of wall-clock time. */
  throughput(windowMs = 5_000, now = Date.now()): number {
    const recent = this.samples.filter(([t]) => now - t <= windowMs);
    if (recent.length < 2) return 0;
    const [t0, n0] = recent[0];
    const [t1, n1] = recent[recent.length - 1];
    return t1 > t0 ? ((n1 - n0) * 1000) / (t1 - t0) : 0;
  }
}

/** The fields of `record` named in `keys` that it has. */
function pick(record: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.filter((k) => k in record).map((k) => [k, record[k]!]));
}
