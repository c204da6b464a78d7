/**
 * Checkpoints: one file per partition holding the partition's job state and
 * the next offset to read, so the two always move together. A file is written
 * to a temporary name, fsynced, renamed over the old one and the directory
 * fsynced: a reader (a restarted worker, or the member that takes the
 * partition over) sees the old checkpoint or the new one, never half of one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface Checkpoint<S = unknown> {
  version: 1;
  jobType: string;
  topic: string;
  partition: number;
  /** The first offset not reflected in `state`. */
  nextOffset: number;
  /** Wall-clock time of the write, epoch ms (for status and logs only). */
  savedAt: number;
  state: S;
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

/** Checkpoints of one consumer group on one topic, under `<dir>/<group>/<topic>/<partition>.json`. */
export class CheckpointStore {
  readonly dir: string;

  constructor(root: string, group: string, topic: string) {
    this.dir = join(root, safe(group), safe(topic));
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new CheckpointError(`checkpoint.dir: cannot create ${this.dir}: ${(err as Error).message}`);
    }
  }

  private file(partition: number): string {
    return join(this.dir, `${partition}.json`);
  }

  load<S>(partition: number, expect: { jobType: string; topic: string }): Checkpoint<S> | undefined {
    const file = this.file(partition);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CheckpointError(`cannot read checkpoint ${file}: ${(err as Error).message}`);
    }
    let cp: Checkpoint<S>;
    try {
      cp = JSON.parse(text) as Checkpoint<S>;
    } catch (err) {
      throw new CheckpointError(`checkpoint ${file} is not valid JSON (${(err as Error).message}); move it away to start that partition afresh`);
    }
    if (cp.version !== 1 || cp.partition !== partition || cp.topic !== expect.topic || cp.jobType !== expect.jobType) {
      throw new CheckpointError(
        `checkpoint ${file} belongs to job type '${cp.jobType}', topic '${cp.topic}', partition ${cp.partition} (version ${cp.version}), ` +
          `not to '${expect.jobType}' on '${expect.topic}' partition ${partition}: use another checkpoint.dir or consumer group`,
      );
    }
    if (!Number.isInteger(cp.nextOffset) || cp.nextOffset < 0) {
      throw new CheckpointError(`checkpoint ${file}: nextOffset ${String(cp.nextOffset)} is not an offset`);
    }
    return cp;
  }

  /**
   * Writes synchronously on purpose: it is called from kafkajs' rebalance
   * notification, which cannot be awaited, and it must be on disk before the
   * partition moves to another member. Returns the size in bytes.
   */
  save<S>(cp: Checkpoint<S>): number {
    const file = this.file(cp.partition);
    const tmp = `${file}.${process.pid}.tmp`;
    const body = Buffer.from(JSON.stringify(cp));
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return body.length;
  }
}

function safe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}
