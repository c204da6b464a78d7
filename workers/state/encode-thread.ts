/**
 * The checkpoint encoder's thread (a worker_threads worker, one per worker
 * process): it turns the records the main thread copied at a checkpoint into
 * a segment file (docs/checkpoints.md): entries, CRC-32, trailer, writes,
 * flushes and fsync, so that the event loop only copies what changed.
 * Ids are read from the index's shared memory (user-index.ts, IdSource).
 * The main side is off-thread.ts; one segment is written at a time.
 */
import { closeSync, fdatasyncSync, fsyncSync, openSync, readlinkSync, unlinkSync, writeSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { idLengthAt, writeIdAt, type IdSource } from './user-index.js';

/** What the main thread sends. `job` numbers one segment. */
export type ToThread =
  | { op: 'open'; job: number; path: string; head: Uint8Array; recordBytes: number; ids: IdSource; syncEveryBytes: number }
  /** Records of slots first, first + 1...; `bits` (a bit per slot, from `first`): the ones to write. */
  | { op: 'page'; job: number; first: number; records: Uint8Array; bits: Uint8Array }
  /** Values copied one by one: u32 slot, u32 length, value; repeated. */
  | { op: 'rows'; job: number; rows: Uint8Array[] }
  | { op: 'finish'; job: number }
  | { op: 'abort'; job: number };

export type FromThread =
  | { op: 'ready' }
  /** A page or rows message is written: its bytes no longer count as in flight; `page`: its buffer, back for the next copy. */
  | { op: 'ack'; job: number; bytes: number; page?: Uint8Array }
  | { op: 'done'; job: number; bytes: number; entries: number }
  | { op: 'aborted'; job: number }
  | { op: 'failed'; job: number; message: string; code?: string };

const CHUNK_BYTES = 1 << 20;
/**
 * The thread's scheduling priority (Linux nice, this thread only): below the
 * event loop's, so that where CPUs are short (a pod's CPU limit, a busy node)
 * scoring goes first and the checkpoint takes longer, yet still gets about a
 * tenth of a CPU when none is idle (nice 10 against 0), so that checkpoints
 * of a saturated worker keep coming, only later.
 */
export const THREAD_NICE = 10;
const TRAILER = Buffer.concat([Buffer.alloc(8), Buffer.from('SLUICEND', 'latin1')]);

class SegmentFile {
  private readonly fd: number;
  private readonly chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private pos = 0;
  private crc = 0;
  private unsynced = 0;
  bytes = 0;
  entries = 0;

  constructor(
    readonly path: string,
    head: Uint8Array,
    private readonly recordBytes: number,
    private readonly ids: IdSource,
    private readonly syncEveryBytes: number,
  ) {
    this.fd = openSync(path, 'w', 0o644);
    this.write(head, head.length);
  }

  page(first: number, records: Uint8Array, bits: Uint8Array): void {
    const src = Buffer.from(records.buffer, records.byteOffset, records.byteLength);
    const r = this.recordBytes;
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      if (b === 0) continue;
      for (let k = 0; k < 8; k++) if (b & (1 << k)) this.entry(first + i * 8 + k, src, (i * 8 + k) * r, r);
    }
  }

  rows(list: Uint8Array[]): void {
    for (const rows of list) {
      const src = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
      for (let at = 0; at < src.length; ) {
        const len = src.readUInt32LE(at + 4);
        this.entry(src.readUInt32LE(at), src, at + 8, len);
        at += 8 + len;
      }
    }
  }

  finish(): { bytes: number; entries: number } {
    this.flush();
    const trailer = Buffer.from(TRAILER);
    trailer.writeUInt32LE(this.entries, 0);
    trailer.writeUInt32LE(this.crc >>> 0, 4);
    this.write(trailer, trailer.length, false);
    fsyncSync(this.fd);
    closeSync(this.fd);
    return { bytes: this.bytes, entries: this.entries };
  }

  discard(): void {
    try {
      closeSync(this.fd);
    } catch {
      // Closed already.
    }
    try {
      unlinkSync(this.path);
    } catch {
      // Never created, or gone.
    }
  }

  private entry(slot: number, src: Buffer, at: number, len: number): void {
    const need = 6 + idLengthAt(this.ids, slot) + len;
    if (this.pos + need > this.chunk.length) {
      this.flush();
      if (need > this.chunk.length) {
        // One entry larger than a chunk (a very long tail): written on its own.
        const big = Buffer.allocUnsafe(need);
        const p = writeIdAt(this.ids, slot, big, 0);
        big.writeUInt32LE(len, p);
        src.copy(big, p + 4, at, at + len);
        this.write(big, need);
        this.entries++;
        return;
      }
    }
    const c = this.chunk;
    const p = this.pos + writeIdAt(this.ids, slot, c, this.pos);
    c.writeUInt32LE(len, p);
    src.copy(c, p + 4, at, at + len);
    this.pos = p + 4 + len;
    this.entries++;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.write(this.chunk, this.pos);
    this.pos = 0;
  }

  /** Writes bytes[0, n) to the file, in the CRC unless `checked` is false (the trailer). */
  private write(bytes: Uint8Array, n: number, checked = true): void {
    if (checked) this.crc = crc32(bytes.subarray(0, n), this.crc);
    for (let done = 0; done < n; ) done += writeSync(this.fd, bytes, done, n - done);
    this.bytes += n;
    this.unsynced += n;
    if (this.unsynced >= this.syncEveryBytes) {
      // A base of millions of users: its dirty pages would otherwise pile up in the pod's memory cgroup until the final fsync.
      this.unsynced = 0;
      fdatasyncSync(this.fd);
    }
  }
}

/** Lowers this thread's priority (a thread's id is a pid to setpriority on Linux); elsewhere it stays as it is. */
function lowerPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, THREAD_NICE);
  } catch {
    // Not Linux, or not allowed: the same priority as the event loop.
  }
}

const port = parentPort;
if (port) {
  lowerPriority();
  const files = new Map<number, SegmentFile>();
  /** Jobs that failed: what still arrives for them is dropped. */
  const failed = new Set<number>();
  const reply = (m: FromThread): void => port.postMessage(m);
  port.on('message', (m: ToThread) => {
    if (failed.has(m.job)) {
      if (m.op === 'abort' || m.op === 'finish') failed.delete(m.job);
      if (m.op === 'abort') reply({ op: 'aborted', job: m.job });
      return;
    }
    const file = files.get(m.job);
    try {
      switch (m.op) {
        case 'open':
          files.set(m.job, new SegmentFile(m.path, m.head, m.recordBytes, m.ids, m.syncEveryBytes));
          break;
        case 'page':
          file!.page(m.first, m.records, m.bits);
          port.postMessage({ op: 'ack', job: m.job, bytes: m.records.byteLength, page: m.records } satisfies FromThread, [m.records.buffer as ArrayBuffer]);
          break;
        case 'rows':
          file!.rows(m.rows);
          reply({ op: 'ack', job: m.job, bytes: m.rows.reduce((n, r) => n + r.byteLength, 0) });
          break;
        case 'finish':
          files.delete(m.job);
          reply({ op: 'done', job: m.job, ...file!.finish() });
          break;
        case 'abort':
          files.delete(m.job);
          file?.discard();
          reply({ op: 'aborted', job: m.job });
          break;
      }
    } catch (err) {
      files.delete(m.job);
      file?.discard();
      if (m.op !== 'finish' && m.op !== 'abort') failed.add(m.job);
      const e = err as NodeJS.ErrnoException;
      reply({ op: 'failed', job: m.job, message: e.message, code: e.code });
    }
  });
  reply({ op: 'ready' });
}
