/**
 * The main thread's side of the checkpoint encoder's thread (encode-thread.ts):
 * starts the thread when first needed, sends it the records of a checkpoint as
 * they are copied (moved, not cloned: transferred buffers) and knows how many
 * bytes it has not written yet, so that a checkpoint of millions of users
 * holds only a few MiB of copies at a time.
 */
import { Worker } from 'node:worker_threads';
import type { FromThread, ToThread } from './encode-thread.js';
import type { IdSource } from './user-index.js';
import type { UserTable } from './table.js';

/**
 * Page buffers kept for reuse, from one checkpoint to the next: a copy
 * window's worth (about 10 MiB of churn's 416 KiB pages, 1.5 MiB of cart's).
 * New memory costs ten times a copy into memory already used.
 */
const POOL_PAGES = 24;

/** Values copied one by one (users about to change, small deltas, disk-backed tables), in buffers of this size. */
const ROWS_BYTES = 256 << 10;

/** Copies of users' values as a segment's thread reads them: u32 slot, u32 length, the value (UserTable.writeValue). */
export class RowBuffer {
  private chunk = new Uint8Array(ROWS_BYTES);
  private view = new DataView(this.chunk.buffer);
  private pos = 0;
  private readonly full: Uint8Array[] = [];

  constructor(private readonly table: UserTable) {}

  add(slot: number): void {
    const len = this.table.valueBytes(slot);
    if (this.pos + 8 + len > this.chunk.length) this.next(8 + len);
    this.view.setUint32(this.pos, slot, true);
    this.view.setUint32(this.pos + 4, len, true);
    this.table.writeValue(slot, this.chunk, this.pos + 8);
    this.pos += 8 + len;
  }

  /** The rows copied so far (each buffer given away: it is transferred to the thread). */
  take(): Uint8Array[] {
    if (this.pos > 0) this.next(0);
    return this.full.splice(0);
  }

  /** Calls fn for each row of `list` (the encoder on the main thread, when there is no thread). */
  static each(list: Uint8Array[], fn: (slot: number, src: Uint8Array, at: number, len: number) => void): void {
    for (const rows of list) {
      const v = new DataView(rows.buffer, rows.byteOffset, rows.byteLength);
      for (let at = 0; at < rows.length; ) {
        const len = v.getUint32(at + 4, true);
        fn(v.getUint32(at, true), rows, at + 8, len);
        at += 8 + len;
      }
    }
  }

  private next(need: number): void {
    if (this.pos > 0) this.full.push(this.chunk.subarray(0, this.pos));
    this.chunk = new Uint8Array(Math.max(ROWS_BYTES, need));
    this.view = new DataView(this.chunk.buffer);
    this.pos = 0;
  }
}

interface Job {
  inFlight: number;
  failure: Error | undefined;
  /** Called on every reply of the thread for this job. */
  wake: (() => void) | undefined;
  result: { bytes: number; entries: number } | undefined;
  closed: boolean;
}

export class ThreadFailure extends Error {
  override readonly name = 'ThreadFailure';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** One segment being written by the thread. */
export class ThreadSegment {
  constructor(
    private readonly thread: SegmentThread,
    readonly job: number,
    private readonly state: Job,
  ) {}

  /** Bytes sent and not written yet. */
  get inFlight(): number {
    return this.state.inFlight;
  }

  /** A buffer of at least `bytes` for a page's records: one the thread gave back, or a new one. */
  buffer(bytes: number): Uint8Array {
    return this.thread.spare(bytes);
  }

  page(first: number, records: Uint8Array, bits: Uint8Array): void {
    this.state.inFlight += records.byteLength;
    this.thread.post({ op: 'page', job: this.job, first, records, bits }, [records.buffer as ArrayBuffer]);
  }

  rows(list: Uint8Array[]): void {
    if (list.length === 0) return;
    this.state.inFlight += list.reduce((n, r) => n + r.byteLength, 0);
    this.thread.post({ op: 'rows', job: this.job, rows: list }, list.map((r) => r.buffer as ArrayBuffer));
  }

  /** Resolves once at most `bytes` are still to be written (throws if the thread failed). */
  async drained(bytes: number): Promise<void> {
    while (this.state.inFlight > bytes && !this.state.failure) await this.reply();
    if (this.state.failure) throw this.state.failure;
  }

  /** The trailer, the fsync: resolves with the segment's size when it is durable. */
  async finish(): Promise<{ bytes: number; entries: number }> {
    if (this.state.failure) throw this.state.failure;
    this.thread.post({ op: 'finish', job: this.job });
    while (!this.state.result && !this.state.failure) await this.reply();
    this.thread.forget(this.job);
    if (this.state.failure) throw this.state.failure;
    return this.state.result!;
  }

  /** Stops writing it; resolves once its file is closed and removed. */
  async abort(): Promise<void> {
    if (!this.state.failure) {
      this.thread.post({ op: 'abort', job: this.job });
      while (!this.state.closed && !this.state.failure) await this.reply();
    }
    this.thread.forget(this.job);
  }

  private reply(): Promise<void> {
    return new Promise((resolve) => (this.state.wake = resolve));
  }
}

/**
 * The thread itself: started on first use, kept while segments are written
 * (unreferenced in between, so that it never keeps a process alive), and
 * started again should it die. `usable` is false when it cannot start at all:
 * checkpoints are then encoded on the main thread, as before.
 */
export class SegmentThread {
  private worker: Worker | undefined;
  private starting: Promise<boolean> | undefined;
  private broken = false;
  private nextJob = 1;
  private readonly jobs = new Map<number, Job>();
  /** Page buffers the thread has written out, for the next copies (fewer allocations and collections during a base). */
  private readonly pool: Uint8Array[] = [];
  /** Segments the thread has written (for tests and logs). */
  written = 0;

  get usable(): boolean {
    return !this.broken;
  }

  /** True once the thread runs; false if it cannot be started here. */
  start(): Promise<boolean> {
    if (this.broken) return Promise.resolve(false);
    if (this.worker && this.starting) return this.starting;
    const worker = spawn();
    this.worker = worker;
    this.starting = new Promise<boolean>((resolve) => {
      worker.on('message', (m: FromThread) => {
        if (m.op !== 'ready') return this.onReply(m);
        if (this.jobs.size === 0) worker.unref();
        resolve(true);
      });
      worker.on('error', (err) => {
        resolve(false);
        this.died(err);
      });
      worker.on('exit', (code) => {
        resolve(false);
        this.died(new Error(`the checkpoint encoder's thread exited (code ${code})`));
      });
    }).then((ok) => {
      // A thread that never said it was ready will not start here (no build, no loader): encode on the main thread.
      if (!ok) this.broken = true;
      return ok;
    });
    return this.starting;
  }

  /** Opens a segment file at `path` (its header bytes first). */
  open(path: string, head: Uint8Array, recordBytes: number, ids: IdSource, syncEveryBytes: number): ThreadSegment {
    const job = this.nextJob++;
    const state: Job = { inFlight: 0, failure: undefined, wake: undefined, result: undefined, closed: false };
    this.jobs.set(job, state);
    this.worker!.ref();
    this.post({ op: 'open', job, path, head, recordBytes, ids, syncEveryBytes });
    return new ThreadSegment(this, job, state);
  }

  post(m: ToThread, transfer: ArrayBuffer[] = []): void {
    this.worker?.postMessage(m, transfer);
  }

  spare(bytes: number): Uint8Array {
    for (let i = this.pool.length - 1; i >= 0; i--) if (this.pool[i].byteLength >= bytes) return this.pool.splice(i, 1)[0].subarray(0, bytes);
    // Not zeroed: every byte is copied over.
    return Buffer.allocUnsafeSlow(bytes);
  }

  forget(job: number): void {
    this.jobs.delete(job);
    if (this.jobs.size === 0) this.worker?.unref();
  }

  /** Stops the thread (tests; a process exiting stops it anyway). */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.starting = undefined;
    await w?.terminate();
  }

  private onReply(m: FromThread): void {
    if (m.op === 'ready') return;
    const job = this.jobs.get(m.job);
    if (!job) return;
    if (m.op === 'ack') {
      job.inFlight -= m.bytes;
      if (m.page && this.pool.length < POOL_PAGES) this.pool.push(new Uint8Array(m.page.buffer));
    }
    else if (m.op === 'done') {
      job.result = { bytes: m.bytes, entries: m.entries };
      this.written++;
    }
    else if (m.op === 'aborted') job.closed = true;
    else job.failure = new ThreadFailure(m.message, m.code);
    const wake = job.wake;
    job.wake = undefined;
    wake?.();
  }

  private died(err: Error): void {
    this.worker = undefined;
    this.starting = undefined;
    for (const job of this.jobs.values()) {
      job.failure ??= new ThreadFailure(`checkpoint encoder's thread failed: ${err.message}`);
      const wake = job.wake;
      job.wake = undefined;
      wake?.();
    }
    this.jobs.clear();
  }
}

/**
 * The thread's module: the compiled JavaScript beside this one; from the
 * TypeScript sources (tests, benchmarks) through tsx's loader, registered
 * inside the thread.
 */
function spawn(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./encode-thread.js', here));
  // Its ESM entry (the CommonJS one cannot register in a thread); resolved here when the runner can, else from the working directory.
  const tsx = typeof import.meta.resolve === 'function' ? import.meta.resolve('tsx/esm/api') : 'tsx/esm/api';
  const script = new URL('./encode-thread.ts', here).href;
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); })`;
  return new Worker(code, { eval: true });
}

/** The process's encoder thread (IoGate's). */
export const encoderThread = new SegmentThread();
