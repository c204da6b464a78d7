/**
 * Records of a UserTable on the pod's local disk, for state larger than
 * memory: an LMDB environment (lmdb-js) keyed by the user's slot, with the
 * records in use cached in memory pages (a clock replaces the least recently
 * used). Writes leave the event loop: a changed record is put asynchronously
 * (lmdb-js commits in its own thread) when it leaves the cache, and kept in
 * memory until committed, so a read never sees an older value. The
 * environment is a cache of the checkpoints: it is not synced, and a restore
 * rebuilds it from the checkpoint volume, so it belongs on local disk (an
 * emptyDir), never on the ReadWriteMany checkpoint volume (memory maps and
 * locks are unsafe on network file systems).
 *
 * Chosen over better-sqlite3 by bench/state/stores.bench.ts: random reads of
 * 208-byte records 1.9 us against 15 us, batched writes 24 against 40 us.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import type { Page } from './page.js';

export const CACHE_PAGE_SHIFT = 10;
const CACHE_PAGE = 1 << CACHE_PAGE_SHIFT;
const CACHE_MASK = CACHE_PAGE - 1;

export interface DiskOptions {
  /** A local directory: each table takes a fresh subdirectory and removes it when disposed. */
  dir: string;
  /** Memory for cached records. */
  cacheMiB: number;
}

export class DiskRecords {
  private readonly root: RootDatabase;
  private readonly db: Database<Uint8Array, number>;
  private readonly path: string;
  private readonly pages: Page[] = [];
  private readonly capacity: number;
  /** Per slot: its cache position, or -1. */
  private cacheOf = new Int32Array(1024).fill(-1);
  /** Per cache position: the slot in it (-1: free), referenced since the hand passed, changed since loaded. */
  private readonly owner: Int32Array;
  private readonly referenced: Uint8Array;
  private readonly changed: Uint8Array;
  private hand = 0;
  /** Records put but not yet committed. */
  private readonly writing = new Map<number, Uint8Array>();
  private failure: Error | undefined;

  constructor(
    o: DiskOptions,
    private readonly recordBytes: number,
  ) {
    mkdirSync(o.dir, { recursive: true });
    this.path = mkdtempSync(join(o.dir, 'table-'));
    // Loaded on first use: a worker keeping its state in memory never loads the native module.
    const { open } = createRequire(import.meta.url)('lmdb') as typeof import('lmdb');
    this.root = open({ path: this.path, noSync: true, compression: false });
    this.db = this.root.openDB<Uint8Array, number>({ name: 'records', keyEncoding: 'uint32', encoding: 'binary' });
    this.capacity = Math.max(CACHE_PAGE, Math.floor((o.cacheMiB * 1048576) / recordBytes / CACHE_PAGE) * CACHE_PAGE);
    this.owner = new Int32Array(this.capacity).fill(-1);
    this.referenced = new Uint8Array(this.capacity);
    this.changed = new Uint8Array(this.capacity);
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

  /** The record's bytes without caching it (a base checkpoint reads every user once); undefined for a record never stored. */
  peek(slot: number): Uint8Array | undefined {
    const c = slot < this.cacheOf.length ? this.cacheOf[slot] : -1;
    if (c >= 0) {
      const b = (c & CACHE_MASK) * this.recordBytes;
      return this.pages[c >>> CACHE_PAGE_SHIFT].u8.subarray(b, b + this.recordBytes);
    }
    return this.writing.get(slot) ?? this.db.getBinaryFast(slot);
  }

  get bytes(): number {
    return this.pages.length * CACHE_PAGE * this.recordBytes + this.cacheOf.byteLength + this.capacity * 6 + this.writing.size * (this.recordBytes + 64);
  }

  /** Bytes of the environment's file on disk. */
  get diskBytes(): number {
    const s = this.root.getStats() as { treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number; pageSize?: number; lastPageNumber?: number };
    return ((s.lastPageNumber ?? 0) + 1) * (s.pageSize ?? 4096);
  }

  /** Throws if a background write failed (the disk is full...): the state is not trustworthy, restore it. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  async dispose(): Promise<void> {
    await this.root.close();
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
    const stored = this.writing.get(slot) ?? this.db.getBinaryFast(slot);
    const b = (c & CACHE_MASK) * this.recordBytes;
    if (stored) this.pages[p].u8.set(stored.subarray(0, this.recordBytes), b);
    this.owner[c] = slot;
    this.cacheOf[slot] = c;
    this.changed[c] = 0;
    return c;
  }

  /** A free cache position, writing out the record it held if it changed. */
  private victim(): number {
    for (;;) {
      const c = this.hand;
      this.hand = (this.hand + 1) % this.capacity;
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

  private writeOut(slot: number, c: number): void {
    const b = (c & CACHE_MASK) * this.recordBytes;
    const bytes = this.pages[c >>> CACHE_PAGE_SHIFT].u8.slice(b, b + this.recordBytes);
    this.writing.set(slot, bytes);
    this.db.put(slot, bytes).then(
      () => {
        if (this.writing.get(slot) === bytes) this.writing.delete(slot);
      },
      (err: Error) => {
        this.failure ??= new Error(`local state store ${this.path}: write failed: ${err.message}`);
      },
    );
  }
}
