/**
 * Incremental checkpoints of one partition: a chain of segment files (a base
 * with every user, then deltas with the users changed since the previous
 * segment) named by a manifest that also holds the next offset, so state and
 * position always move together. See docs/checkpoints.md for the format.
 *
 * A checkpoint is cut synchronously (which users, which offset: a memset and
 * * a copy of the changed-user list), then encoded in slices of a few
 * milliseconds and written with asynchronous I/O; a user about to change
 * before it was encoded is encoded first (copy-on-write), so the segment is
 * the state exactly at the cut. The manifest is replaced atomically (temporary
 * file, fsync, rename, fsync of the directory) and kept in two slots, the
 * newer one winning (its seq); restore applies base + deltas, verifying each file, and
 * stops at the last consistent point if a file is torn.
 *
 * `saveNow` is the synchronous path for a rebalance, which cannot wait: it
 * abandons a checkpoint in flight and writes one delta of everything changed
 * since the last durable point.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { readSegmentFile, SegmentEncoder, sameFormat, segmentHead, TornSegmentError, type CheckpointPoint, type SegmentHeader } from './segment.js';
import { PAGE_RECORDS, type SnapshotSink, type StateFormat, type UserTable } from './table.js';
import { assertCompatible } from './format.js';
import { encoderThread, RowBuffer, ThreadFailure, type SegmentThread, type ThreadSegment } from './off-thread.js';

export const MANIFEST_FORMAT = 'sluice-checkpoint';
export const MANIFEST_VERSION = 2;

export interface SegmentRef {
  file: string;
  kind: 'base' | 'delta';
  seq: number;
  nextOffset: number;
  bytes: number;
  users: number;
}

export interface Manifest extends CheckpointPoint {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** The current base and its deltas, oldest first. */
  chain: SegmentRef[];
  /** The chain before the last compaction, kept as a fallback should the current base be unreadable. */
  previous: SegmentRef[];
  /** CRC-32 of this JSON document written with checksum 0. */
  checksum: number;
}

export interface CheckpointIdentity {
  jobType: string;
  topic: string;
  partition: number;
  format: StateFormat;
}

export interface Restored {
  table: UserTable;
  meta: Record<string, number>;
  nextOffset: number;
  savedAt: number;
  /** What was read, for the log: "base 12 + 3 deltas", and any file skipped and why. */
  detail: string;
}

export interface CheckpointOutcome {
  kind: 'base' | 'delta';
  bytes: number;
  users: number;
  nextOffset: number;
  /** Wall time from the cut until the manifest was durable. */
  ms: number;
}

export interface CheckpointPolicy {
  /** A new base is written when the deltas since the last one add up to this fraction of it... */
  compactRatio: number;
  /** ...or when the chain has this many deltas (restore reads them all). */
  maxDeltas: number;
  /** Time budget of one slice of a checkpoint on the event loop (copying records, or encoding them without the thread). */
  sliceMs: number;
  /**
   * Encode and write segments on the encoder's thread, the event loop only
   * copying the records (default true); false, or a thread that cannot start:
   * encoded on the event loop in slices.
   */
  offThread?: boolean;
}

/** A segment being written is flushed after this many bytes, so that its dirty pages stay few (they count against the pod's memory limit). */
const SYNC_EVERY_BYTES = 64 << 20;

export const DEFAULT_POLICY: CheckpointPolicy = { compactRatio: 0.5, maxDeltas: 40, sliceMs: 2, offThread: true };

/** Bytes of copied records sent to the encoder's thread and not yet written: what a checkpoint holds in memory beyond the table. */
const THREAD_WINDOW_BYTES = 8 << 20;

/**
 * Lets one checkpoint write at a time, per worker: file writes and fsyncs run
 * on libuv's small thread pool, which the model's inference calls need too;
 * partitions checkpointing all at once would hold every thread and delay
 * scoring. A checkpoint waiting here is already cut (copy-on-write keeps it
 * exact).
 */
export class IoGate {
  private tail: Promise<unknown> = Promise.resolve();
  /** The checkpoint encoder's thread: one per process, shared by every partition (one segment at a time per gate). */
  readonly thread: SegmentThread = encoderThread;

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

interface Cut {
  epoch: number;
  slots: Int32Array | null;
  count: number;
}

interface InFlight {
  abandoned: boolean;
  /** Users changed between the previous cut and this one: not durable until this checkpoint is. */
  changes: Int32Array;
  done: Promise<CheckpointOutcome | undefined>;
}

export class PartitionCheckpoints {
  readonly dir: string;
  private readonly writer = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  /** The manifest the next one builds on, and the one before it (both on disk, in the two slots). */
  private current: Manifest | undefined;
  private older: Manifest | undefined;
  private seq = 0;
  private needsBase = true;
  private flight: InFlight | undefined;

  constructor(
    root: string,
    private readonly id: CheckpointIdentity,
    private readonly policy: CheckpointPolicy = DEFAULT_POLICY,
    private readonly gate: IoGate = new IoGate(),
  ) {
    this.dir = join(root, String(id.partition));
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new CheckpointError(`checkpoint.dir: cannot create ${this.dir}: ${(err as Error).message}`);
    }
  }

  get inFlight(): boolean {
    return this.flight !== undefined;
  }

  /** Waits for a checkpoint in flight (shutdown). */
  async settled(): Promise<void> {
    await this.flight?.done.catch(() => undefined);
  }

  // ---- restore ----

  /**
   * Reads the newest consistent point: the newer manifest's chain, base +
   * deltas, each verified; a torn delta ends the chain at the one before, a
   * torn base falls back to the previous chain, then to the older manifest.
   * Undefined when the partition has no checkpoint.
   */
  load(newTable: () => UserTable): Restored | undefined {
    this.abandon();
    const skipped: string[] = [];
    const manifests = [0, 1].map((slot) => this.readManifest(slot, skipped)).filter((m): m is Manifest => m !== undefined);
    manifests.sort((a, b) => b.seq - a.seq);
    this.seq = Math.max(this.seq, ...manifests.map((m) => m.seq));
    for (const m of manifests) {
      this.checkIdentity(m);
      for (const chain of [m.chain, m.previous]) {
        if (chain.length === 0) continue;
        const got = this.readChain(chain, newTable, skipped);
        if (!got) continue;
        // Continue from what was read; a chain cut short by a torn file is not extended: the next checkpoint is a base.
        this.current = { ...m, chain: chain.slice(0, got.segments), previous: chain === m.chain ? m.previous : [] };
        this.older = manifests.find((o) => o !== m);
        this.needsBase = got.segments < chain.length || chain !== m.chain;
        got.table.settle();
        const what = `${chain[0].kind} ${chain[0].seq}${got.segments > 1 ? ` + ${got.segments - 1} deltas` : ''}`;
        return { table: got.table, meta: got.meta, nextOffset: got.nextOffset, savedAt: got.savedAt, detail: skipped.length ? `${what}; skipped: ${skipped.join('; ')}` : what };
      }
    }
    if (manifests.length > 0 || skipped.length > 0) throw new CheckpointError(`checkpoint ${this.dir}: no readable point (${skipped.join('; ')}); move the directory away to start the partition afresh`);
    this.current = undefined;
    this.needsBase = true;
    return undefined;
  }

  private readManifest(slot: number, skipped: string[]): Manifest | undefined {
    const file = join(this.dir, `manifest.${slot}.json`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CheckpointError(`cannot read checkpoint manifest ${file}: ${(err as Error).message}`);
    }
    try {
      const m = JSON.parse(text) as Manifest;
      if (m.format !== MANIFEST_FORMAT || m.version !== MANIFEST_VERSION) throw new Error(`format ${String(m.format)} version ${String(m.version)}`);
      if (manifestChecksum(m) !== m.checksum) throw new Error('checksum mismatch');
      return m;
    } catch (err) {
      // A torn manifest: the other slot holds the previous one.
      skipped.push(`manifest.${slot}.json is unreadable (${(err as Error).message})`);
      return undefined;
    }
  }

  private checkIdentity(m: Manifest): void {
    const id = this.id;
    if (m.partition !== id.partition || m.topic !== id.topic || m.jobType !== id.jobType) {
      throw new CheckpointError(
        `checkpoint ${this.dir} belongs to job type '${m.jobType}', topic '${m.topic}', partition ${m.partition}, ` +
          `not to '${id.jobType}' on '${id.topic}' partition ${id.partition}: use another checkpoint.dir or consumer group`,
      );
    }
    // Never read as if it were ours: say what to do instead (StateIncompatibleError).
    if (!sameFormat(id.format, m.state)) assertCompatible(`the checkpoint of partition ${id.partition} (${this.dir})`, m.state, id.format);
  }

  private readChain(chain: SegmentRef[], newTable: () => UserTable, skipped: string[]): { table: UserTable; meta: Record<string, number>; nextOffset: number; savedAt: number; segments: number } | undefined {
    const table = newTable();
    let header: SegmentHeader | undefined;
    let segments = 0;
    for (const ref of chain) {
      try {
        // Streamed: applied as it is read, verified at its end.
        header = readSegmentFile(join(this.dir, ref.file), ref.file, table, (h) => {
          if (h.seq !== ref.seq || h.kind !== ref.kind) throw new TornSegmentError(`${ref.file}: is ${h.kind} ${h.seq}, the manifest expects ${ref.kind} ${ref.seq}`);
        }).header;
        segments++;
      } catch (err) {
        skipped.push((err as Error).message);
        // The table may hold part of the torn segment: read the chain again up to the last good one.
        void table.dispose();
        if (segments === 0) return undefined;
        return this.readChain(chain.slice(0, segments), newTable, skipped);
      }
    }
    if (!header) {
      void table.dispose();
      return undefined;
    }
    return { table, meta: header.meta, nextOffset: header.nextOffset, savedAt: header.savedAt, segments };
  }

  // ---- write ----

  /**
   * Starts a checkpoint of the table as of now at `nextOffset`: a delta, or a
   * base when the chain asks for compaction (or `full`). Returns undefined when
   * one is still in flight (the caller tries again later).
   */
  begin(table: UserTable, meta: Record<string, number>, nextOffset: number, full = false): Promise<CheckpointOutcome | undefined> | undefined {
    if (this.flight) return undefined;
    const kind = full || this.wantsBase() ? 'base' : 'delta';
    const started = performance.now();
    const header = this.header(kind, ++this.seq, nextOffset, meta);
    const flight: InFlight = { abandoned: false, changes: new Int32Array(0), done: Promise.resolve(undefined) };
    // A user about to change before the snapshot took them: their value as of the cut, copied now.
    const early = new RowBuffer(table);
    const sink: SnapshotSink = {
      early: (slot) => {
        early.add(slot);
        table.encoded(slot);
      },
    };
    const cut = table.cut(kind === 'base', sink);
    flight.changes = cut.changes;
    flight.done = this.gate
      .run(() => this.write(flight, table, early, cut, header, started))
      .catch((err: unknown) => {
        // Not durable: these users go into the next checkpoint.
        if (!flight.abandoned) table.redirty(cut.changes);
        throw err;
      })
      .finally(() => {
        if (this.flight === flight) this.flight = undefined;
      });
    this.flight = flight;
    return flight.done;
  }

  private async write(flight: InFlight, table: UserTable, early: RowBuffer, cut: Cut, header: SegmentHeader, started: number): Promise<CheckpointOutcome | undefined> {
    // Abandoned while it waited for the gate.
    if (flight.abandoned) return undefined;
    const file = `${header.kind}-${String(header.seq).padStart(8, '0')}-${this.writer}.seg`;
    const tmp = join(this.dir, `${file}.tmp`);
    let written: { bytes: number; entries: number } | undefined;
    try {
      const thread = this.policy.offThread !== false && (await this.gate.thread.start()) ? this.gate.thread : undefined;
      if (flight.abandoned) return undefined;
      written = thread ? await this.copyToThread(thread, tmp, flight, table, early, cut, header) : await this.encodeInto(tmp, flight, table, new SegmentEncoder(table, header), early, cut);
    } catch (err) {
      // The thread's errors carry the file system's code (ENOSPC...) as the event loop's would.
      if (err instanceof ThreadFailure) throw Object.assign(new Error(err.message), { code: err.code });
      throw err;
    } finally {
      if (!flight.abandoned) table.endSnapshot();
      if (!written) await unlink(tmp).catch(() => undefined);
    }
    if (!written || flight.abandoned) return undefined;
    await rename(tmp, join(this.dir, file));
    const ref: SegmentRef = { file, kind: header.kind, seq: header.seq, nextOffset: header.nextOffset, bytes: written.bytes, users: written.entries };
    const m = this.manifestWith(ref, header);
    const target = join(this.dir, `manifest.${m.seq % 2}.json`);
    const mtmp = `${target}.${this.writer}.tmp`;
    await writeDurably(mtmp, Buffer.from(JSON.stringify(m, null, 1)));
    if (flight.abandoned) {
      await unlink(mtmp).catch(() => undefined);
      return undefined;
    }
    await rename(mtmp, target);
    // A rebalance's saveNow in the meantime wrote a newer manifest (seq + 1) on the chain before this one: it wins.
    if (flight.abandoned) return undefined;
    this.adopt(m);
    // In the background; should the directory be gone meanwhile (moved away), the next checkpoint syncs it again.
    void this.syncDir().then(() => this.collect(), () => undefined);
    return { kind: header.kind, bytes: written.bytes, users: written.entries, nextOffset: header.nextOffset, ms: performance.now() - started };
  }

  /**
   * Copies the cut's users to the encoder's thread in slices of `sliceMs`:
   * whole pages of records (a base, or a delta of many users: a memcpy each)
   * or one value at a time (a small delta, a disk-backed table), never more
   * than THREAD_WINDOW_BYTES ahead of what the thread has written. The
   * thread encodes, checksums, writes and fsyncs; undefined when abandoned.
   */
  private async copyToThread(thread: SegmentThread, tmp: string, flight: InFlight, table: UserTable, early: RowBuffer, cut: Cut, header: SegmentHeader): Promise<{ bytes: number; entries: number } | undefined> {
    const seg = thread.open(tmp, segmentHead(header), table.recordSize, table.index.shared(), SYNC_EVERY_BYTES);
    let finished = false;
    try {
      const rows = new RowBuffer(table);
      const row = (slot: number): void => rows.add(slot);
      const byPage = table.paged && (cut.slots === null || cut.count * 8 > table.size);
      // A delta by pages reads each page's pending bits: the changed users, wherever they are.
      const total = byPage ? Math.ceil(table.size / PAGE_RECORDS) : cut.count;
      let i = 0;
      while (i < total) {
        i = byPage ? this.pageSlice(table, seg, rows, i, total) : this.slice(table, cut, i, row);
        seg.rows(early.take());
        seg.rows(rows.take());
        if (i < total) {
          await nextTurn();
          // Half the window free before the next copies: bursts of pages, not a wake-up for each one the thread writes.
          if (!flight.abandoned) await seg.drained(THREAD_WINDOW_BYTES / 2);
        }
        if (flight.abandoned) return undefined;
      }
      table.endSnapshot();
      seg.rows(early.take());
      const done = await seg.finish();
      finished = true;
      return done;
    } finally {
      if (!finished) await seg.abort();
    }
  }

  /** Copies pages from `pg` on for one slice of time; returns the next page. */
  private pageSlice(table: UserTable, seg: ThreadSegment, rows: RowBuffer, pg: number, pages: number): number {
    const stop = performance.now() + this.policy.sliceMs;
    const row = (slot: number): void => rows.add(slot);
    const buffer = (bytes: number): Uint8Array => seg.buffer(bytes);
    do {
      const first = pg * PAGE_RECORDS;
      const got = table.takePendingPage(first, Math.min(PAGE_RECORDS, table.size - first), row, buffer);
      if (got) seg.page(first, got.records, got.bits);
      pg++;
    } while (pg < pages && performance.now() < stop && seg.inFlight < THREAD_WINDOW_BYTES);
    return pg;
  }

  /** Encodes the cut's users on the event loop in slices of `sliceMs`, writing chunks as they fill; undefined when abandoned. */
  private async encodeInto(tmp: string, flight: InFlight, table: UserTable, encoder: SegmentEncoder, early: RowBuffer, cut: Cut): Promise<{ bytes: number; entries: number } | undefined> {
    const fh = await open(tmp, 'w', 0o644);
    const copied = (slot: number, src: Uint8Array, at: number, len: number): void => encoder.addCopied(slot, src, at, len);
    const add = (slot: number): void => encoder.add(slot);
    try {
      let i = 0;
      let unsynced = 0;
      while (i < cut.count) {
        RowBuffer.each(early.take(), copied);
        i = this.slice(table, cut, i, add);
        const chunks = encoder.take();
        for (const chunk of chunks) {
          await fh.write(chunk);
          unsynced += chunk.length;
        }
        encoder.recycle(chunks);
        if (unsynced >= SYNC_EVERY_BYTES) {
          // A base of millions of users: dirty pages would otherwise pile up in the pod's memory cgroup until the final fsync.
          unsynced = 0;
          await fh.datasync();
        }
        if (i < cut.count) await nextTurn();
        if (flight.abandoned) return undefined;
      }
      table.endSnapshot();
      RowBuffer.each(early.take(), copied);
      encoder.finish();
      for (const chunk of encoder.take()) await fh.write(chunk);
      await fh.sync();
      return { bytes: encoder.bytes, entries: encoder.entries };
    } finally {
      await fh.close();
    }
  }

  /** Hands the pending users from position i on to `take` for one slice of time; returns the next position. */
  private slice(table: UserTable, cut: Cut, i: number, take: (slot: number) => void): number {
    const stop = performance.now() + this.policy.sliceMs;
    do {
      const end = Math.min(cut.count, i + 256);
      for (; i < end; i++) {
        const slot = cut.slots ? cut.slots[i] : i;
        if (!table.isPending(slot)) continue;
        take(slot);
        table.encoded(slot);
      }
    } while (i < cut.count && performance.now() < stop);
    return i;
  }

  /**
   * Checkpoints synchronously, now: abandons a checkpoint in flight and writes
   * one delta (or a base, when there is no chain to extend) with every user
   * changed since the last durable point.
   */
  saveNow(table: UserTable, meta: Record<string, number>, nextOffset: number): CheckpointOutcome {
    const started = performance.now();
    const notDurable = this.flight?.changes;
    this.abandon(table);
    const kind = this.current === undefined || this.needsBase ? 'base' : 'delta';
    const cut = table.cut(kind === 'base', undefined);
    const slots = kind === 'delta' ? union(notDurable, cut.changes) : null;
    const header = this.header(kind, ++this.seq, nextOffset, meta);
    const encoder = new SegmentEncoder(table, header);
    const file = `${kind}-${String(header.seq).padStart(8, '0')}-${this.writer}.seg`;
    const tmp = join(this.dir, `${file}.tmp`);
    writeSegmentSync(tmp, encoder, slots, slots ? slots.length : table.size);
    renameSync(tmp, join(this.dir, file));
    const m = this.manifestWith({ file, kind, seq: header.seq, nextOffset, bytes: encoder.bytes, users: encoder.entries }, header);
    const target = join(this.dir, `manifest.${m.seq % 2}.json`);
    writeFileDurably(`${target}.${this.writer}.tmp`, [Buffer.from(JSON.stringify(m, null, 1))]);
    renameSync(`${target}.${this.writer}.tmp`, target);
    fsyncDir(this.dir);
    this.adopt(m);
    void this.collect();
    return { kind, bytes: encoder.bytes, users: encoder.entries, nextOffset, ms: performance.now() - started };
  }

  /** Stops a checkpoint in flight; it will write nothing that counts. */
  abandon(table?: UserTable): void {
    if (!this.flight) return;
    this.flight.abandoned = true;
    this.flight = undefined;
    table?.endSnapshot();
  }

  private wantsBase(): boolean {
    if (this.current === undefined || this.needsBase) return true;
    const [base, ...deltas] = this.current.chain;
    const deltaBytes = deltas.reduce((n, d) => n + d.bytes, 0);
    return deltas.length >= this.policy.maxDeltas || deltaBytes > base.bytes * this.policy.compactRatio;
  }

  private header(kind: 'base' | 'delta', seq: number, nextOffset: number, meta: Record<string, number>): SegmentHeader {
    const { jobType, topic, partition, format } = this.id;
    return { kind, seq, jobType, topic, partition, state: { name: format.name, version: format.version, features: [...format.features] }, nextOffset, meta, savedAt: Date.now() };
  }

  /** The manifest naming the chain with `ref` at its end (a base starts a new chain; the old one becomes `previous`). */
  private manifestWith(ref: SegmentRef, header: SegmentHeader): Manifest {
    const chain = ref.kind === 'base' ? [ref] : [...(this.current?.chain ?? []), ref];
    const previous = ref.kind === 'base' ? (this.current?.chain ?? []) : (this.current?.previous ?? []);
    const { jobType, topic, partition } = this.id;
    const m: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, seq: header.seq, jobType, topic, partition, state: header.state, nextOffset: header.nextOffset, savedAt: header.savedAt, chain, previous, checksum: 0 };
    m.checksum = manifestChecksum(m);
    return m;
  }

  private adopt(m: Manifest): void {
    this.older = this.current;
    this.current = m;
    this.needsBase = false;
  }

  /** The current chain, the one before the last compaction, and the older manifest's chain (a part of these): two bases at most. */
  private referenced(): Set<string> {
    const c = this.current;
    const refs = c ? [...c.chain, ...c.previous] : [];
    if (this.older) refs.push(...this.older.chain);
    return new Set(refs.map((r) => r.file));
  }

  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Removes segment files no point worth restoring needs. */
  private async collect(): Promise<void> {
    const keep = this.referenced();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      // Another member may have removed it first.
      // Files newer than the manifest belong to a checkpoint still being written.
      const seq = Number(/^(?:base|delta)-(\d+)-/.exec(name)?.[1] ?? NaN);
      if (name.endsWith('.seg') && !keep.has(name) && seq <= (this.current?.seq ?? 0)) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }
}

/**
 * Writes the whole table as a new, one-segment checkpoint of the partition in
 * `root/<partition>/` (a base and its manifest, synchronously), for a
 * directory no PartitionCheckpoints writes to at the same time: a snapshot,
 * or a stopped job's checkpoints being rewritten by a restore (the caller
 * empties the directory first). The table is read as it is, not cut, so the
 * live checkpoints of a running worker carry on undisturbed.
 */
export function writeBase(root: string, id: CheckpointIdentity, table: UserTable, meta: Record<string, number>, nextOffset: number): { bytes: number; users: number } {
  const dir = join(root, String(id.partition));
  mkdirSync(dir, { recursive: true });
  const writer = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`;
  const state = { name: id.format.name, version: id.format.version, features: [...id.format.features] };
  const header: SegmentHeader = { kind: 'base', seq: 1, jobType: id.jobType, topic: id.topic, partition: id.partition, state, nextOffset, meta, savedAt: Date.now() };
  const encoder = new SegmentEncoder(table, header);
  const file = `base-00000001-${writer}.seg`;
  writeSegmentSync(join(dir, `${file}.tmp`), encoder, null, table.size);
  renameSync(join(dir, `${file}.tmp`), join(dir, file));
  const ref: SegmentRef = { file, kind: 'base', seq: 1, nextOffset, bytes: encoder.bytes, users: encoder.entries };
  const m: Manifest = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, seq: 1, jobType: id.jobType, topic: id.topic, partition: id.partition, state, nextOffset, savedAt: header.savedAt, chain: [ref], previous: [], checksum: 0 };
  m.checksum = manifestChecksum(m);
  writeFileDurably(join(dir, `manifest.1.json.${writer}.tmp`), [Buffer.from(JSON.stringify(m, null, 1))]);
  renameSync(join(dir, `manifest.1.json.${writer}.tmp`), join(dir, 'manifest.1.json'));
  fsyncDir(dir);
  return { bytes: encoder.bytes, users: encoder.entries };
}

/** The newer valid manifest of a partition's checkpoint directory (for tools and tests), or undefined. */
export function latestManifest(partitionDir: string): Manifest | undefined {
  let best: Manifest | undefined;
  for (const slot of [0, 1]) {
    try {
      const m = JSON.parse(readFileSync(join(partitionDir, `manifest.${slot}.json`), 'utf8')) as Manifest;
      if (manifestChecksum(m) === m.checksum && (!best || m.seq > best.seq)) best = m;
    } catch {
      // Absent or torn: the other slot.
    }
  }
  return best;
}

function union(a: Int32Array | undefined, b: Int32Array): Int32Array {
  if (!a || a.length === 0) return b;
  return Int32Array.from(new Set([...a, ...b]));
}

function manifestChecksum(m: Manifest): number {
  return crc32(Buffer.from(JSON.stringify({ ...m, checksum: 0 }))) >>> 0;
}

async function writeDurably(path: string, body: Uint8Array): Promise<void> {
  const fh = await open(path, 'w', 0o644);
  try {
    await fh.write(body);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Encodes `count` users (`slots[i]`, or slot i) into a new file and fsyncs it, writing chunks as they fill (a base is never held whole in memory). */
function writeSegmentSync(path: string, encoder: SegmentEncoder, slots: Int32Array | null, count: number): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    let unsynced = 0;
    for (let i = 0; i < count; i++) {
      encoder.add(slots ? slots[i] : i);
      if (encoder.ready.length === 0) continue;
      const chunks = encoder.take();
      for (const c of chunks) unsynced += writeAll(fd, c);
      encoder.recycle(chunks);
      if (unsynced >= SYNC_EVERY_BYTES) {
        // As encodeInto: a few dirty pages at a time, not a whole base's.
        unsynced = 0;
        fdatasyncSync(fd);
      }
    }
    encoder.finish();
    for (const c of encoder.take()) writeAll(fd, c);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, c: Uint8Array): number {
  for (let done = 0; done < c.length; ) done += writeSync(fd, c, done, c.length - done);
  return c.length;
}

function writeFileDurably(path: string, chunks: Uint8Array[]): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    for (const c of chunks) writeSync(fd, c);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
