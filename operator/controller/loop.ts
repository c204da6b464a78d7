/**
 * The generic controller loop: `concurrency` workers take keys from the work
 * queue and reconcile them. Four outcomes, as controller-runtime's
 * reconcileHandler: success forgets the key's failures; a result with
 * `requeueAfterMs` forgets them and looks again after that long; an error is
 * retried with the key's backoff; a TerminalError is logged and counted, not retried.
 */
import type { Logger } from 'pino';
import { isTerminal } from './errors.js';
import type { WorkQueue } from './queue.js';

export interface ReconcileResult {
  /** Look again after this long even if nothing changes (timeouts, external checks). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult>;

export type Outcome = 'success' | 'error' | 'terminal';

export interface LoopHooks {
  /** Called around each reconcile: `done(outcome)` when it ends (metrics). */
  started?: () => (outcome: Outcome) => void;
  describeError?: (err: unknown) => string;
}

export class ControllerLoop {
  private workers: Promise<void>[] = [];

  constructor(
    private readonly queue: WorkQueue,
    private readonly reconcile: Reconcile,
    private readonly log: Logger,
    private readonly hooks: LoopHooks = {},
  ) {}

  start(concurrency: number): void {
    this.workers = Array.from({ length: concurrency }, () => this.work());
  }

  /** Resolves when every worker has finished its reconcile in flight (after the queue shuts down). */
  async drain(): Promise<void> {
    await Promise.all(this.workers);
  }

  /** One reconcile of one key, with its outcome applied to the queue. */
  async handle(key: string): Promise<Outcome> {
    const done = this.hooks.started?.();
    let outcome: Outcome = 'success';
    try {
      const result = await this.reconcile(key);
      this.queue.forget(key);
      if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
    } catch (err) {
      const message = this.hooks.describeError?.(err) ?? String(err);
      if (isTerminal(err)) {
        outcome = 'terminal';
        this.queue.forget(key);
        this.log.error({ job: key, err: message }, 'reconcile failed for good; not retried (a change of the job or the periodic resync looks again)');
      } else {
        outcome = 'error';
        const delay = this.queue.addRateLimited(key);
        this.log.warn({ job: key, err: message, retryInMs: delay }, 'reconcile failed; will retry');
      }
    } finally {
      done?.(outcome);
      this.queue.done(key);
    }
    return outcome;
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.handle(key);
    }
  }
}
