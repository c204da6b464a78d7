import type { Logger } from 'pino';

/**
 * What the background observers of Kafka (topic partitions, consumer lag)
 * share: answers kept per key and read off the reconcile path, and the jobs
 * that asked requeued when what they would show changes.
 */
export abstract class Observer<Entry> {
  protected readonly entries = new Map<string, Entry>();

  protected constructor(
    private readonly requeue: (jobKey: string) => void,
    protected readonly log: Logger,
  ) {}

  /** Requeues `jobs` when the new answer differs from the previous one. */
  protected requeueIfChanged<T>(previous: T, next: T, jobs: Iterable<string>): void {
    if (JSON.stringify(next) === JSON.stringify(previous)) return;
    for (const job of jobs) this.requeue(job);
  }
}
