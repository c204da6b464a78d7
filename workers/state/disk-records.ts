/**
 * Records of a UserTable on the pod's local disk, for state larger than
 * memory: one file of fixed-size records, the record of slot s at
 * s × recordBytes, with the records in use cached in memory pages (a clock
 * replaces the least recently used). A changed record is written back in
 * place (pwrite) when it leaves the cache, synchronously: nothing waits in
 * memory to be written, so memory stays bounded however far the disk falls
 * behind (the write goes to the page cache; the kernel holds a writer back
 * when too much of it is dirty). Every `syncEveryBytes` written, the file is
 * flushed in the background (fdatasync off the event loop), so that dirty
 * pages never pile up in the pod's memory cgroup, where they count against
 * its limit; should four times that be written while a flush is still
 * running, the writer waits for the disk (fdatasync on the event loop).
 *
 * The file is a cache of the checkpoints: it is never synced for durability,
 * and a restore rebuilds it from the checkpoint volume, so it belongs on local
 * disk (an emptyDir), never on the ReadWriteMany checkpoint volume.
 *
 * Chosen over LMDB and SQLite by bench/state/stores.bench.ts: a record keyed
 * by a dense slot needs no tree, and rewriting one in place costs one system
 * call instead of a copied 4 KiB page per record changed (LMDB) and a commit
 * that has to be waited for.
 */
import { closeSync, fdatasync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from './page.js';

export const CACHE_PAGE_SHIFT = 10;
const CACHE_PAGE = 1 << CACHE_PAGE_SHIFT;
const CACHE_MASK = CACHE_PAGE - 1;
/** Consecutive slots written back in one system call (while a base is restored or users are created in order). */
const COMBINE_BYTES = 1 << 20;
/** Records read at once when a base checkpoint reads every user in slot order. */
const READ_AHEAD_BYTES = 1 << 20;

export interface DiskOptions {
  /** A local directory: each table takes a fresh subdirectory and removes it when disposed. */
  dir: string;
  /** Memory for cached records. */
  cacheMiB: number;
  /** Flush the file in the background after this many bytes written (default 64 MiB). */
  syncEveryBytes?: number;
}

export class DiskRecords {
  private readonly path: string;
  private fd: number;
  private readonly pages: Page[] = [];
  private readonly capacity: number;
  /** Per slot: its cache position, or -1. */
  private cacheOf = new Int32Array(1024).fill(-1);
  /** Per cache position: the slot in it (-1: free), referenced since the hand passed, changed since loaded. */
  private readonly owner: Int32Array;
  private readonly referenced: Uint8Array;
  private readonly changed: Uint8Array;
  private hand = 0;
  /** Slots written to the file: [0, stored) hold a record (a slot leaves the cache only once written). */
  private stored = 0;
  /** Records of consecutive slots [combineFrom, combineFrom + combineCount) not yet written. */
  private readonly combine: Uint8Array;
  private combineFrom = 0;
  private combineCount = 0;
  /** Records of slots [aheadFrom, aheadFrom + aheadCount) as in the file. */
  private readonly ahead: Uint8Array;
  private aheadFrom = 0;
  private aheadCount = 0;
  private lastPeek = -2;
  private readonly one: Uint8Array;
  private readonly syncEvery: number;
  private unsynced = 0;
  private syncing = false;
  private written = 0;

  constructor(
    o: DiskOptions,
    private readonly recordBytes: number,
  ) {
    mkdirSync(o.dir, { recursive: true });
    this.path = mkdtempSync(join(o.dir, 'table-'));
    this.fd = openSync(join(this.path, 'records'), 'w+', 0o600);
    this.capacity = Math.max(CACHE_PAGE, Math.floor((o.cacheMiB * 1048576) / recordBytes / CACHE_PAGE) * CACHE_PAGE);
    this.owner = new Int32Array(this.capacity).fill(-1);
    this.referenced = new Uint8Array(this.capacity);
    this.changed = new Uint8Array(this.capacity);
    this.combine = new Uint8Array(Math.max(1, Math.floor(COMBINE_BYTES / recordBytes)) * recordBytes);
    this.ahead = new Uint8Array(Math.max(1, Math.floor(READ_AHEAD_BYTES / recordBytes)) * recordBytes);
    this.one = new Uint8Array(recordBytes);
    this.syncEvery = o.syncEveryBytes ?? 64 << 20;
  }

  /** The cache page holding the slot's record, loading it when not cached. */
  page(slot: number): Page {
    let c = slot < this.cacheOf.length ? this.cacheOf[slot] : -1;
    if (c < 0) c = this.load(slot);
    this.referenced[c] = 1;
    return this.pages[c >>> CACHE_PAGE_SHIFT];
  }

  /** The record's byte offset in page(slot) (call page first). */
  base(slot: number): number {
    let c = this.cacheOf[slot];
    if (c < 0) c = this.load(slot);
    return (c & CACHE_MASK) * this.recordBytes;
  }

  /** The record is about to change: it must be written before it leaves the cache. */
  changing(slot: number): void {
    let c = slot < this.cacheOf.length ? this.cacheOf[slot] : -1;
    if (c < 0) c = this.load(slot);
    this.changed[c] = 1;
  }

  /**
   * The record's bytes without caching it (a base checkpoint reads every user
   * once, in slot order: read ahead); valid until the next call. Undefined for
   * a record never stored.
   */
  peek(slot: number): Uint8Array | undefined {
    const c = slot < this.cacheOf.length ? this.cacheOf[slot] : -1;
    const r = this.recordBytes;
    if (c >= 0) {
      const b = (c & CACHE_MASK) * r;
      return this.pages[c >>> CACHE_PAGE_SHIFT].u8.subarray(b, b + r);
    }
    if (slot >= this.stored && !this.combining(slot)) return undefined;
    const sequential = slot === this.lastPeek + 1;
    this.lastPeek = slot;
    if (slot < this.aheadFrom || slot >= this.aheadFrom + this.aheadCount) {
      this.flushCombined();
      if (!sequential) {
        // A delta's users, in the order they changed: one record at a time.
        this.readFully(this.one, r, slot * r);
        return this.one;
      }
      this.aheadFrom = slot;
      this.aheadCount = Math.min(this.ahead.length / r, this.stored - slot);
      this.readFully(this.ahead, this.aheadCount * r, slot * r);
    }
    const b = (slot - this.aheadFrom) * r;
    return this.ahead.subarray(b, b + r);
  }

  /** Memory held: the cache, its bookkeeping and the I/O buffers. */
  get bytes(): number {
    return this.pages.length * CACHE_PAGE * this.recordBytes + this.cacheOf.byteLength + this.capacity * 6 + this.combine.byteLength + this.ahead.byteLength;
  }

  /** Bytes of the records file. */
  get diskBytes(): number {
    return Math.max(this.stored, this.combineFrom + this.combineCount) * this.recordBytes;
  }

  /** Bytes written to the file so far (for the benchmark). */
  get bytesWritten(): number {
    return this.written;
  }

  async dispose(): Promise<void> {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    rmSync(this.path, { recursive: true, force: true });
  }

  private load(slot: number): number {
    if (slot >= this.cacheOf.length) {
      const bigger = new Int32Array(Math.max(slot + 1, Math.ceil(this.cacheOf.length * 1.5))).fill(-1);
      bigger.set(this.cacheOf);
      this.cacheOf = bigger;
    }
    const c = this.victim();
    const p = c >>> CACHE_PAGE_SHIFT;
    if (p === this.pages.length) {
      const buf = new ArrayBuffer(CACHE_PAGE * this.recordBytes);
      this.pages.push({ u8: new Uint8Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf), f64: new Float64Array(buf) });
    }
    const r = this.recordBytes;
    const b = (c & CACHE_MASK) * r;
    const into = this.pages[p].u8;
    if (this.combining(slot)) into.set(this.combine.subarray((slot - this.combineFrom) * r, (slot - this.combineFrom + 1) * r), b);
    else if (slot < this.stored) this.readFully(into.subarray(b, b + r), r, slot * r);
    // A slot never stored is new: the table initialises it.
    this.owner[c] = slot;
    this.cacheOf[slot] = c;
    this.changed[c] = 0;
    return c;
  }

  /** A free cache position, writing out the record it held if it changed. */
  private victim(): number {
    for (;;) {
      const c = this.hand;
      this.hand = this.hand + 1 === this.capacity ? 0 : this.hand + 1;
      const slot = this.owner[c];
      if (slot < 0) return c;
      if (this.referenced[c]) {
        this.referenced[c] = 0;
        continue;
      }
      if (this.changed[c]) this.writeOut(slot, c);
      this.cacheOf[slot] = -1;
      this.owner[c] = -1;
      return c;
    }
  }

  /** Writes a cached record to its place in the file (consecutive slots gathered into one write). */
  private writeOut(slot: number, c: number): void {
    const r = this.recordBytes;
    const src = this.pages[c >>> CACHE_PAGE_SHIFT].u8;
    const b = (c & CACHE_MASK) * r;
    if (this.combineCount > 0 && (slot !== this.combineFrom + this.combineCount || this.combineCount * r === this.combine.length)) this.flushCombined();
    if (this.combineCount === 0) this.combineFrom = slot;
    this.combine.set(src.subarray(b, b + r), this.combineCount * r);
    this.combineCount++;
    // The read-ahead buffer holds the file as it was: keep it current.
    if (slot >= this.aheadFrom && slot < this.aheadFrom + this.aheadCount) this.ahead.set(src.subarray(b, b + r), (slot - this.aheadFrom) * r);
  }

  private combining(slot: number): boolean {
    return slot >= this.combineFrom && slot < this.combineFrom + this.combineCount;
  }

  private flushCombined(): void {
    if (this.combineCount === 0) return;
    const n = this.combineCount * this.recordBytes;
    let done = 0;
    while (done < n) done += writeSync(this.fd, this.combine, done, n - done, this.combineFrom * this.recordBytes + done);
    this.stored = Math.max(this.stored, this.combineFrom + this.combineCount);
    this.combineCount = 0;
    this.written += n;
    this.unsynced += n;
    if (this.unsynced < this.syncEvery) return;
    if (!this.syncing) {
      // Turns the dirty pages written so far into clean ones the kernel may drop (not for durability: the file is a cache).
      this.unsynced = 0;
      this.syncing = true;
      fdatasync(this.fd, () => {
        this.syncing = false;
      });
    } else if (this.unsynced >= 4 * this.syncEvery) {
      // The disk is slower than the writes (a restore writes at memory speed): wait for it here rather than let dirty pages fill the pod's memory.
      this.unsynced = 0;
      fdatasyncSync(this.fd);
    }
  }

  private readFully(into: Uint8Array, n: number, position: number): void {
    let done = 0;
    while (done < n) {
      const got = readSync(this.fd, into, done, n - done, position + done);
      if (got === 0) throw new Error(`local state store ${this.path}: the records file ends at ${position + done}, record expected`);
      done += got;
    }
  }
}
