/**
 * Compact per-user state of one partition: a UserIndex (id -> dense slot) and
 * fixed-size binary records in pages of typed arrays, one record per user, so
 * that a user costs a few hundred bytes (churn) or a few dozen (cart) instead
 * of a JavaScript object graph. A job type subclasses UserTable with its
 * record layout; its feature code reads and writes the record in place.
 *
 * The table also keeps what incremental checkpoints need: which users changed
 * since the last checkpoint (every mutation goes through `touch(slot)` first),
 * and copy-on-write for a snapshot being encoded in the background: a user
 * still to be encoded is encoded (as it was at the cut) before it changes.
 */
import { DiskRecords, type DiskOptions } from './disk-records.js';
import type { Page } from './page.js';
import { UserIndex } from './user-index.js';

/** Where a table keeps its records: in memory (the default), or on local disk with a cache. */
export type StateStore = { backend: 'memory' } | ({ backend: 'disk' } & DiskOptions);

export const PAGE_SHIFT = 11;
export const PAGE_RECORDS = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_RECORDS - 1;

export type { Page } from './page.js';

/** Names a record layout and the features it was built for; a checkpoint is only restored into the same. */
export interface StateFormat {
  /** e.g. `churn`. */
  readonly name: string;
  /** Bumped whenever the record layout or its meaning changes. */
  readonly version: number;
  /** The feature names (in model order) this state computes. */
  readonly features: readonly string[];
}

/** Receives the users of a snapshot; the table calls `early` for a user about to change before it was encoded. */
export interface SnapshotSink {
  early(slot: number): void;
}

export abstract class UserTable {
  readonly index = new UserIndex();
  abstract readonly format: StateFormat;
  /** Bytes of one record; a multiple of 8. */
  protected abstract readonly recordBytes: number;
  protected readonly pages: Page[] = [];
  /** Set for a disk-backed table: the records live there, `pages` stays empty. */
  protected readonly disk: DiskRecords | undefined;

  /** Counts cuts: a checkpoint covers the changes of one epoch (or, a rebalance's, of the epochs not yet durable). */
  private epochNow = 1;
  /** Bit per user: changed since the last cut, i.e. in `dirty`. */
  private changed = new Uint8Array(128);
  private dirty = new Int32Array(1024);
  private dirtyCount = 0;
  /** Bit per user: a snapshot in progress has yet to encode the user. */
  private pending = new Uint8Array(128);
  private sink: SnapshotSink | undefined;

  constructor(store: StateStore = { backend: 'memory' }, recordBytes?: number) {
    if (store.backend === 'disk') {
      if (recordBytes === undefined) throw new Error('a disk-backed table needs its record size');
      this.disk = new DiskRecords(store, recordBytes);
    }
  }

  get size(): number {
    return this.index.size;
  }

  /** Bytes of the disk-backed store's files (0 in memory). */
  get diskBytes(): number {
    return this.disk?.diskBytes ?? 0;
  }

  /** Releases what the table holds outside the heap (a disk-backed store's files). */
  async dispose(): Promise<void> {
    await this.disk?.dispose();
  }

  get epoch(): number {
    return this.epochNow;
  }

  /** Users changed since the last cut. */
  get changedCount(): number {
    return this.dirtyCount;
  }

  /** The slot of a user, or -1 if the table has never seen them. */
  find(id: string): number {
    return this.index.find(id);
  }

  /** The slot of a user, created with a fresh record when new. */
  slot(id: string): number {
    const before = this.index.size;
    const s = this.index.slot(id);
    if (s === before) this.created(s);
    return s;
  }

  /** The slot of a user given as UTF-8 bytes (restore), created when new. */
  slotOfBytes(src: Uint8Array, off: number, len: number): number {
    const before = this.index.size;
    const s = this.index.slotOfBytes(src, off, len);
    if (s === before) this.created(s);
    return s;
  }

  id(slot: number): string {
    return this.index.id(slot);
  }

  /**
   * The page holding a slot's record; base() is the record's byte offset in
   * it. Call page() first, and use the two for one user at a time: a
   * disk-backed table may reuse the page for another user.
   */
  page(slot: number): Page {
    return this.disk ? this.disk.page(slot) : this.pages[slot >>> PAGE_SHIFT];
  }

  base(slot: number): number {
    return this.disk ? this.disk.base(slot) : (slot & PAGE_MASK) * this.recordBytes;
  }

  /** Call before changing a user's state. */
  touch(slot: number): void {
    this.disk?.changing(slot);
    const byte = slot >>> 3;
    const bit = 1 << (slot & 7);
    if ((this.pending[byte] & bit) !== 0) this.sink!.early(slot);
    if ((this.changed[byte] & bit) === 0) {
      this.changed[byte] |= bit;
      if (this.dirtyCount === this.dirty.length) this.dirty = grow(this.dirty, this.dirty.length * 2);
      this.dirty[this.dirtyCount++] = slot;
    }
  }

  /** Bytes of memory the table holds (index, records and the job's extra data). */
  get bytes(): number {
    return this.index.bytes + this.pages.reduce((n, p) => n + p.u8.length, 0) + (this.disk?.bytes ?? 0) + this.changed.byteLength + this.dirty.byteLength + this.pending.byteLength + this.extraBytes();
  }

  // ---- record encoding (checkpoints, the disk store) ----

  /** Bytes of the job's data of a user beyond the fixed record (0 by default). */
  protected tailBytes(_slot: number): number {
    return 0;
  }

  protected writeTail(_slot: number, _out: Uint8Array, _at: number): void {}

  /** Reads `len` tail bytes into a slot whose fixed record was just written. */
  protected readTail(_slot: number, _src: Uint8Array, _at: number, _len: number): void {}

  /** Called for a slot whose record is about to be overwritten by a decoded one (drop extra data it refers to). */
  protected release(_slot: number): void {}

  protected extraBytes(): number {
    return 0;
  }

  /** Fills a new record with the state of a user never seen. */
  protected abstract init(page: Page, base: number): void;

  /** Encoded size of a user's value (record and tail), without the id. */
  valueBytes(slot: number): number {
    return this.recordBytes + this.tailBytes(slot);
  }

  /** Writes a user's value (record, then tail) at out[at...]; returns the bytes written. */
  writeValue(slot: number, out: Uint8Array, at: number): number {
    if (this.disk) {
      // Not through the cache: a base checkpoint reads every user once.
      const stored = this.disk.peek(slot);
      if (!stored) throw new Error(`${this.format.name} state of slot ${slot} is missing from the local store`);
      out.set(stored.subarray(0, this.recordBytes), at);
    } else {
      const b = this.base(slot);
      const p = this.pages[slot >>> PAGE_SHIFT];
      // Buffer.copy: a memcpy without a view object per user.
      (p.buf ??= Buffer.from(p.u8.buffer, p.u8.byteOffset, p.u8.byteLength)).copy(out, at, b, b + this.recordBytes);
    }
    const tail = this.tailBytes(slot);
    if (tail) this.writeTail(slot, out, at + this.recordBytes);
    return this.recordBytes + tail;
  }

  /** Replaces a user's value with one written by writeValue (of the same format). */
  readValue(slot: number, src: Uint8Array, at: number, len: number): void {
    if (len < this.recordBytes) throw new Error(`${this.format.name} record of ${len} bytes, expected at least ${this.recordBytes}`);
    this.disk?.changing(slot);
    this.release(slot);
    this.page(slot).u8.set(src.subarray(at, at + this.recordBytes), this.base(slot));
    this.readTail(slot, src, at + this.recordBytes, len - this.recordBytes);
  }

  // ---- checkpoint cuts ----

  /**
   * Starts a snapshot as of now of the users changed since the last cut
   * (`full`: of every user), with `sink` told of a pending user about to
   * change; opens a new epoch. `changes` are the users changed since the last
   * cut (a full snapshot's too), so that they can be checkpointed again should
   * this one not become durable.
   */
  cut(full: boolean, sink: SnapshotSink | undefined): { epoch: number; slots: Int32Array | null; count: number; changes: Int32Array } {
    if (this.sink) throw new Error('a snapshot of this table is already in progress');
    const epoch = this.epochNow;
    // The list itself, not a copy: the cut is O(1) for a base, O(changes) for a delta (their pending bits), whatever the table's size.
    const changes = this.dirty.subarray(0, this.dirtyCount);
    if (full || changes.length * 8 > this.size) this.changed.fill(0);
    else for (let i = 0; i < changes.length; i++) this.changed[changes[i] >>> 3] = 0;
    const count = full ? this.size : changes.length;
    if (sink) {
      if (full) {
        this.pending.fill(0xff, 0, count >>> 3);
        // Not the users created after the cut.
        if (count & 7) this.pending[count >>> 3] = (1 << (count & 7)) - 1;
      }
      else for (let i = 0; i < count; i++) this.pending[changes[i] >>> 3] |= 1 << (changes[i] & 7);
      this.sink = sink;
    }
    this.dirtyCount = 0;
    // A new list grows as users change; the old one, `changes`, lives until the checkpoint is durable.
    this.dirty = new Int32Array(1024);
    this.epochNow = epoch + 1;
    return { epoch, slots: full ? null : changes, count, changes };
  }

  /** Users changed since the last cut (a copy). */
  changedNow(): Int32Array {
    return this.dirty.slice(0, this.dirtyCount);
  }

  /** Marks users as changed again (their checkpoint failed). */
  redirty(slots: Int32Array): void {
    for (let i = 0; i < slots.length; i++) if (slots[i] < this.size) this.touchQuietly(slots[i]);
  }

  isPending(slot: number): boolean {
    return (this.pending[slot >>> 3] & (1 << (slot & 7))) !== 0;
  }

  /** The snapshot has encoded this user (it may change freely now). */
  encoded(slot: number): void {
    this.pending[slot >>> 3] &= ~(1 << (slot & 7));
  }

  /** Bytes of one record (what a page holds per user). */
  get recordSize(): number {
    return this.recordBytes;
  }

  /** The records are in memory pages (not a disk-backed store): a snapshot can copy them a page at a time. */
  get paged(): boolean {
    return this.disk === undefined;
  }

  /**
   * For a snapshot copied a page at a time (memory tables): the records of
   * slots first .. first + n - 1 (one page: `first` a multiple of
   * PAGE_RECORDS) as a copy, and a bit per slot for the users of the snapshot
   * still to be encoded, which are no longer pending once this returns. A
   * pending user with a tail beyond the fixed record goes to `row` instead
   * (and is not in the bits). `buffer` gives the memory for the copy.
   * Undefined when none of them is pending.
   */
  takePendingPage(first: number, n: number, row: (slot: number) => void, buffer: (bytes: number) => Uint8Array = (b) => new Uint8Array(b)): { records: Uint8Array; bits: Uint8Array } | undefined {
    const from = first >>> 3;
    const to = (first + n + 7) >>> 3;
    const pending = this.pending;
    let i = from;
    while (i < to && pending[i] === 0) i++;
    if (i === to) return undefined;
    const bits = pending.slice(from, to);
    for (let b = i - from; b < bits.length; b++) {
      const byte = bits[b];
      if (byte === 0) continue;
      for (let k = 0; k < 8; k++) {
        if ((byte & (1 << k)) === 0) continue;
        const slot = first + b * 8 + k;
        if (this.tailBytes(slot) === 0) continue;
        row(slot);
        bits[b] &= ~(1 << k);
      }
    }
    pending.fill(0, from, to);
    const bytes = n * this.recordBytes;
    const records = buffer(bytes);
    records.set(this.pages[first >>> PAGE_SHIFT].u8.subarray(0, bytes));
    return { records, bits };
  }

  /** The snapshot is over (written, or abandoned): nothing is pending any more. */
  endSnapshot(): void {
    if (!this.sink) return;
    this.pending.fill(0);
    this.sink = undefined;
  }

  get snapshotting(): boolean {
    return this.sink !== undefined;
  }

  /** After a restore: the state as read is the checkpoint, nothing changed since. */
  settle(): void {
    this.changed.fill(0);
    this.dirtyCount = 0;
    this.epochNow = 1;
  }

  private touchQuietly(slot: number): void {
    const byte = slot >>> 3;
    const bit = 1 << (slot & 7);
    if ((this.changed[byte] & bit) !== 0) return;
    this.changed[byte] |= bit;
    if (this.dirtyCount === this.dirty.length) this.dirty = grow(this.dirty, this.dirty.length * 2);
    this.dirty[this.dirtyCount++] = slot;
  }

  private created(slot: number): void {
    const pg = slot >>> PAGE_SHIFT;
    if (this.disk) {
      // Records are cached by the store.
    } else if (pg === this.pages.length) this.pages.push(newPage(pg === 0 ? 64 : PAGE_RECORDS, this.recordBytes));
    else if ((slot & PAGE_MASK) * this.recordBytes === this.pages[pg].u8.length) {
      // The first page starts small and doubles up to a full page (views of it are valid until the next new user).
      const bigger = newPage(Math.min(PAGE_RECORDS, (slot & PAGE_MASK) * 2), this.recordBytes);
      bigger.u8.set(this.pages[pg].u8);
      this.pages[pg] = bigger;
    }
    if (slot >>> 3 === this.changed.length) {
      this.changed = grow(this.changed, this.changed.length * 2);
      this.pending = grow(this.pending, this.pending.length * 2);
    }
    this.init(this.page(slot), this.base(slot));
    this.touch(slot);
  }
}

function newPage(records: number, recordBytes: number): Page {
  const buf = new ArrayBuffer(records * recordBytes);
  return { u8: new Uint8Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf), f64: new Float64Array(buf) };
}

function grow<T extends Int32Array | Uint32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** The `users` mapping of a version 1 (JSON) checkpoint's state. */
export function legacyUsers(snapshot: unknown, what: string): Array<[string, unknown]> {
  if (snapshot === null || typeof snapshot !== 'object') throw new Error(`${what} checkpoint state is not an object`);
  const users = (snapshot as { users?: unknown }).users;
  if (users === null || typeof users !== 'object' || Array.isArray(users)) throw new Error(`${what} checkpoint state has no 'users' mapping`);
  return Object.entries(users as Record<string, unknown>);
}

/** Copies one user's state into another table of the same layout through its encoding (what a checkpoint and restore do to it). */
export function copyUser<T extends UserTable>(from: T, slot: number, into: T): number {
  const value = new Uint8Array(from.valueBytes(slot));
  from.writeValue(slot, value, 0);
  const id = from.index.idBytes(slot);
  const target = into.slotOfBytes(id, 0, id.length);
  into.readValue(target, value, 0, value.length);
  return target;
}
