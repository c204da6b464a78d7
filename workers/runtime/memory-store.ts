/**
 * An in-memory result store with the same semantics as RedisSink, for
 * `sluice demo` (no Redis) and unit tests. It also counts throughput and can
 * list the riskiest users, which is what the demo shows.
 */
import type { CartAlert, UserWrite } from './job.js';
import type { AlertClaim, ResultSink } from './sink.js';

export interface StoredAlert extends CartAlert {
  email: string;
}

export class MemoryStore implements ResultSink {
  readonly users = new Map<string, Record<string, string>>();
  readonly alerts = new Map<string, StoredAlert>();
  private readonly emailMarkers = new Map<string, string>();
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

  async recordAlerts(alerts: readonly CartAlert[], email: 'pending' | 'disabled'): Promise<void> {
    for (const a of alerts) {
      const previous = this.alerts.get(a.cartId);
      this.alerts.set(a.cartId, { ...a, email: previous?.email ?? email });
    }
  }

  async claimAlert(cartId: string, holder: string, takeOver = false): Promise<AlertClaim> {
    const v = this.emailMarkers.get(cartId);
    if (v === undefined || v === 'failed' || v === holder) {
      this.emailMarkers.set(cartId, holder);
      return { kind: 'claimed' };
    }
    if (v === 'sent') return { kind: 'sent' };
    if (takeOver) {
      this.emailMarkers.set(cartId, holder);
      return { kind: 'taken-over', holder: v };
    }
    return { kind: 'uncertain', holder: v };
  }

  async finishAlert(cartId: string, holder: string, outcome: 'sent' | 'failed' | 'uncertain'): Promise<void> {
    if (this.emailMarkers.get(cartId) !== holder) return;
    this.emailMarkers.set(cartId, outcome);
    const alert = this.alerts.get(cartId);
    if (alert && outcome !== 'failed') alert.email = outcome;
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

  /** The users with the highest churn score, highest first. */
  riskiest(n: number): Array<{ userId: string; score: number; riskLevel: string; updatedAt: string }> {
    const rows: Array<{ userId: string; score: number; riskLevel: string; updatedAt: string }> = [];
    for (const [userId, h] of this.users) {
      if (h.churn_score === undefined) continue;
      rows.push({ userId, score: Number(h.churn_score), riskLevel: h.risk_level ?? '', updatedAt: h.updated_at ?? '' });
    }
    rows.sort((a, b) => b.score - a.score || a.userId.localeCompare(b.userId));
    return rows.slice(0, n);
  }

  /** The most recent cart alerts (by abandonment time), newest first. */
  recentAlerts(n: number): StoredAlert[] {
    return [...this.alerts.values()].sort((a, b) => b.abandonedAt - a.abandonedAt).slice(0, n);
  }
}
