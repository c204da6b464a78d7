import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventGenerator } from '../events/generator.js';
import type { UserEvent } from '../events/types.js';
import { CART_STATE_FORMAT, CartTable } from '../jobs/cart/features.js';
import { CHURN_FEATURES, CHURN_STATE_FORMAT, churnFeatures, ChurnTable, updateChurn } from '../jobs/churn/features.js';
import { CheckpointError, DEFAULT_POLICY, IoGate, PartitionCheckpoints, writeBase } from './checkpoints.js';
import { StateIncompatibleError } from './format.js';
import { readSegmentFile } from './segment.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const id = { jobType: 'churn', topic: 't', partition: 0, format: CHURN_STATE_FORMAT };
const events = [...new EventGenerator({ seed: 3, users: 400, days: 20 })];

function newLog(root?: string, policy = { compactRatio: 0.5, maxDeltas: 40, sliceMs: 1 }): PartitionCheckpoints {
  const dir = root ?? mkdtempSync(join(tmpdir(), 'sluice-cp-'));
  if (!root) dirs.push(dir);
  return new PartitionCheckpoints(dir, id, policy);
}

function fold(t: ChurnTable, list: UserEvent[]): void {
  for (const e of list) updateChurn(t, t.slot(e.userId), e);
}

/** Every user's features as of a fixed time: equal maps mean equal state. */
function picture(t: ChurnTable): Map<string, number[]> {
  const out = new Float32Array(CHURN_FEATURES.length);
  const m = new Map<string, number[]>();
  for (let s = 0; s < t.size; s++) {
    churnFeatures(t, s, events.at(-1)!.eventTime, out, 0);
    m.set(t.id(s), [...out]);
  }
  return m;
}

const restore = (log: PartitionCheckpoints): ReturnType<PartitionCheckpoints['load']> => log.load(() => new ChurnTable());

describe('incremental checkpoints', () => {
  it('restore base + deltas to exactly the state at the last cut, though users changed while it was written', async () => {
    const log = newLog(undefined, { compactRatio: 100, maxDeltas: 40, sliceMs: 1 });
    const t = new ChurnTable();
    const parts = [0.4, 0.6, 0.8, 1].map((f) => Math.floor(f * events.length));
    let from = 0;
    let atCut: Map<string, number[]> | undefined;
    for (const [k, to] of parts.entries()) {
      fold(t, events.slice(from, to));
      from = to;
      atCut = picture(t);
      const done = log.begin(t, { watermark: k }, to)!;
      // Users change while the checkpoint is encoded and written: it must still hold the cut.
      if (k < parts.length - 1) fold(t, events.slice(to, to + 500).filter((e) => e.eventTime > 0));
      from = k < parts.length - 1 ? to + 500 : to;
      const outcome = await done;
      expect(outcome!.kind).toBe(k === 0 ? 'base' : 'delta');
    }
    const got = restore(newLog(log.dir.replace(/\/0$/, '')))!;
    expect(got.nextOffset).toBe(events.length);
    expect(got.meta).toEqual({ watermark: 3 });
    expect(got.detail).toBe('base 1 + 3 deltas');
    expect(picture(got.table as ChurnTable)).toEqual(atCut);
  });

  it('writes a delta of only the users changed since the last checkpoint', async () => {
    const log = newLog();
    const t = new ChurnTable();
    fold(t, events);
    const base = (await log.begin(t, {}, 1))!;
    const one = events.filter((e) => e.userId === 'u7').slice(0, 3);
    fold(t, one);
    const delta = (await log.begin(t, {}, 2))!;
    expect(base).toMatchObject({ kind: 'base', users: t.size });
    expect(delta).toMatchObject({ kind: 'delta', users: 1 });
    // The header (identity, state format, feature names) and one 208-byte record.
    expect(delta.bytes).toBeLessThan(1000);
    expect(delta.bytes * 20).toBeLessThan(base.bytes);
  });

  it('detects a torn delta and restores the previous consistent point; the next checkpoint starts a new base', async () => {
    const log = newLog();
    const t = new ChurnTable();
    fold(t, events.slice(0, 3000));
    await log.begin(t, {}, 3000);
    const before = picture(t);
    fold(t, events.slice(3000, 6000));
    await log.begin(t, {}, 6000);
    const delta = readdirSync(log.dir).find((f) => f.startsWith('delta-'))!;
    truncateSync(join(log.dir, delta), 100);
    const again = newLog(log.dir.replace(/\/0$/, ''));
    const got = restore(again)!;
    expect(got.nextOffset).toBe(3000);
    expect(got.detail).toMatch(/^base 1; skipped: delta-.*too short|^base 1; skipped: delta-.*torn/);
    expect(picture(got.table as ChurnTable)).toEqual(before);
    fold(got.table as ChurnTable, events.slice(3000, 3100));
    expect((await again.begin(got.table, {}, 3100))!.kind).toBe('base');
  });

  it('reads a segment in chunks smaller than one entry as exactly as whole, and finds damage anywhere in it', () => {
    const t = new ChurnTable();
    fold(t, events);
    const root = mkdtempSync(join(tmpdir(), 'sluice-chunks-'));
    dirs.push(root);
    writeBase(root, id, t, {}, 1);
    const file = join(root, '0', readdirSync(join(root, '0')).find((f) => f.startsWith('base-'))!);
    for (const chunk of [7, 100, 209, 4096]) {
      const got = new ChurnTable();
      expect(readSegmentFile(file, 'base', got, undefined, chunk).count).toBe(t.size);
      expect(picture(got)).toEqual(picture(t));
    }
    const bytes = readFileSync(file);
    // An id length byte: without the checksum the entries would no longer parse.
    bytes[bytes.length - 2000] ^= 0x40;
    writeFileSync(file, bytes);
    expect(() => readSegmentFile(file, 'base', new ChurnTable(), undefined, 100)).toThrow(/checksum mismatch/);
  });

  it('detects a damaged byte by its checksum, and a torn manifest by its own', async () => {
    const log = newLog();
    const t = new ChurnTable();
    fold(t, events.slice(0, 2000));
    await log.begin(t, {}, 2000);
    fold(t, events.slice(2000, 2500));
    await log.begin(t, {}, 2500);
    // Manifest 2 (slot 0) is torn: manifest 1 (slot 1) names the base alone.
    writeFileSync(join(log.dir, 'manifest.0.json'), readFileSync(join(log.dir, 'manifest.0.json'), 'utf8').slice(0, 50));
    expect(restore(newLog(log.dir.replace(/\/0$/, '')))!).toMatchObject({ nextOffset: 2000, detail: expect.stringMatching(/manifest\.0\.json is unreadable/) });
    const base = readdirSync(log.dir).find((f) => f.startsWith('base-'))!;
    const bytes = readFileSync(join(log.dir, base));
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(join(log.dir, base), bytes);
    expect(() => restore(newLog(log.dir.replace(/\/0$/, '')))).toThrow(/checksum mismatch/);
  });

  it('saveNow (a rebalance) abandons the checkpoint in flight and covers it', async () => {
    const log = newLog();
    const t = new ChurnTable();
    fold(t, events.slice(0, 4000));
    await log.begin(t, {}, 4000);
    fold(t, events.slice(4000, 8000));
    const inFlight = log.begin(t, {}, 8000)!;
    fold(t, events.slice(8000, 9000));
    const now = log.saveNow(t, { watermark: 1 }, 9000);
    expect(await inFlight).toBeUndefined();
    expect(now.kind).toBe('delta');
    const want = picture(t);
    const got = restore(newLog(log.dir.replace(/\/0$/, '')))!;
    expect(got.nextOffset).toBe(9000);
    expect(picture(got.table as ChurnTable)).toEqual(want);
  });

  it('compacts into a new base when the deltas grow, keeps the previous chain as a fallback and removes older files', async () => {
    const log = newLog(undefined, { compactRatio: 100, maxDeltas: 3, sliceMs: 1 });
    const t = new ChurnTable();
    const kinds: string[] = [];
    for (let k = 0; k < 9; k++) {
      fold(t, events.slice(k * 1000, (k + 1) * 1000));
      kinds.push((await log.begin(t, {}, (k + 1) * 1000))!.kind);
    }
    expect(kinds).toEqual(['base', 'delta', 'delta', 'delta', 'base', 'delta', 'delta', 'delta', 'base']);
    // Let the background clean-up run.
    await new Promise((r) => setTimeout(r, 50));
    const files = readdirSync(log.dir).filter((f) => f.endsWith('.seg'));
    expect(files.filter((f) => f.startsWith('base-')).length).toBe(2);
    const got = restore(newLog(log.dir.replace(/\/0$/, '')))!;
    expect(got.nextOffset).toBe(9000);
    expect(picture(got.table as ChurnTable)).toEqual(picture(t));
  });

  it('refuses a checkpoint of another job type or state format', async () => {
    const log = newLog();
    const t = new ChurnTable();
    fold(t, events.slice(0, 100));
    await log.begin(t, {}, 100);
    const root = log.dir.replace(/\/0$/, '');
    expect(() => new PartitionCheckpoints(root, { ...id, jobType: 'cart', format: CART_STATE_FORMAT }).load(() => new CartTable())).toThrow(CheckpointError);
    const v2 = { ...CHURN_STATE_FORMAT, version: 2 };
    expect(() => new PartitionCheckpoints(root, { ...id, format: v2 }).load(() => new ChurnTable())).toThrow(StateIncompatibleError);
    expect(() => new PartitionCheckpoints(root, { ...id, format: v2 }).load(() => new ChurnTable())).toThrow(
      /^StateIncompatible: the checkpoint of partition 0 .* cannot be used: its state format is churn v1, this worker reads v2\. Nothing was started from zero\. To go on: .*spec\.restore/,
    );
    const more = { ...CHURN_STATE_FORMAT, features: [...CHURN_STATE_FORMAT.features, 'days_to_holiday'] };
    expect(() => new PartitionCheckpoints(root, { ...id, format: more }).load(() => new ChurnTable())).toThrow(/this job needs features the state lacks: days_to_holiday/);
  });

  it('writes a whole table as a one-segment checkpoint that restores as it was (snapshots, restores)', () => {
    const t = new ChurnTable();
    fold(t, events.slice(0, 300));
    const root = mkdtempSync(join(tmpdir(), 'sluice-base-'));
    const written = writeBase(root, id, t, { watermark: 42 }, 300);
    expect(written.users).toBe(t.size);
    const got = new PartitionCheckpoints(root, id).load(() => new ChurnTable())!;
    expect(got).toMatchObject({ nextOffset: 300, meta: { watermark: 42 } });
    expect(got.table.size).toBe(t.size);
    const value = (table: ChurnTable, slot: number): Buffer => {
      const out = new Uint8Array(table.valueBytes(slot));
      table.writeValue(slot, out, 0);
      return Buffer.from(out);
    };
    for (let slot = 0; slot < t.size; slot++) expect(value(got.table as ChurnTable, got.table.find(t.id(slot)))).toEqual(value(t, slot));
    rmSync(root, { recursive: true, force: true });
  });
});

describe('partitions sharing the I/O gate', () => {
  it('write one at a time; one waiting and then saved by a rebalance writes nothing that counts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sluice-cp-'));
    dirs.push(root);
    const gate = new IoGate();
    const logs = [0, 1, 2].map((partition) => new PartitionCheckpoints(root, { ...id, partition }, DEFAULT_POLICY, gate));
    const tables = logs.map(() => new ChurnTable());
    tables.forEach((t, p) => fold(t, events.filter((_, i) => i % 3 === p)));
    const flights = logs.map((log, p) => log.begin(tables[p], { p }, 100 + p)!);
    // Partition 2 still waits for the gate: the rebalance checkpoint replaces it.
    fold(tables[2], events.slice(0, 50));
    const now = logs[2].saveNow(tables[2], { p: 2 }, 200);
    const outcomes = await Promise.all(flights);
    expect(outcomes.map((o) => o?.kind)).toEqual(['base', 'base', undefined]);
    expect(now.kind).toBe('base');
    for (const p of [0, 1, 2]) {
      const got = restore(new PartitionCheckpoints(root, { ...id, partition: p }))!;
      expect(got.nextOffset).toBe(p === 2 ? 200 : 100 + p);
      expect(picture(got.table as ChurnTable)).toEqual(picture(tables[p]));
    }
  });
});

describe('the disk-backed table', () => {
  it('holds more users than its cache, checkpoints them and restores them from the checkpoint volume', async () => {
    const local = mkdtempSync(join(tmpdir(), 'sluice-local-'));
    dirs.push(local);
    const many = [...new EventGenerator({ seed: 8, users: 3000, days: 12 })];
    // Flushed every few records: the flushes in the background and the waits for the disk run too.
    const store = { backend: 'disk' as const, dir: local, cacheMiB: 0.1, syncEveryBytes: 8192 };
    const disk = new ChurnTable(store);
    const memory = new ChurnTable();
    fold(disk, many.slice(0, 30_000));
    fold(memory, many.slice(0, 30_000));
    // More users than the cache holds (1024 records).
    expect(disk.size).toBeGreaterThan(1300);
    expect(picture(disk)).toEqual(picture(memory));
    const log = newLog();
    await log.begin(disk, {}, 30_000);
    fold(disk, many.slice(30_000, 40_000));
    fold(memory, many.slice(30_000, 40_000));
    await log.begin(disk, {}, 40_000);
    const restored = log.load(() => new ChurnTable(store))!;
    expect(restored.detail).toBe('base 1 + 1 deltas');
    expect(picture(restored.table as ChurnTable)).toEqual(picture(memory));
    expect(restored.table.diskBytes).toBeGreaterThan(0);
    await disk.dispose();
    await restored.table.dispose();
    expect(readdirSync(local)).toEqual([]);
  });

  it('writes the users of a cut while they change and leave the cache (copy-on-write, read ahead)', async () => {
    const local = mkdtempSync(join(tmpdir(), 'sluice-local-'));
    dirs.push(local);
    const many = [...new EventGenerator({ seed: 9, users: 4000, days: 12 })];
    const store = { backend: 'disk' as const, dir: local, cacheMiB: 0.1 };
    const disk = new ChurnTable(store);
    fold(disk, many.slice(0, 30_000));
    const atCut = picture(disk);
    const log = newLog(undefined, { compactRatio: 0.5, maxDeltas: 40, sliceMs: 0.05 });
    const done = log.begin(disk, {}, 30_000)!;
    // Every user changes (and most are evicted) while the base is still being encoded.
    for (let k = 30_000; k < many.length; k += 200) {
      fold(disk, many.slice(k, k + 200));
      await new Promise((r) => setImmediate(r));
    }
    expect((await done)!.kind).toBe('base');
    const restored = log.load(() => new ChurnTable(store))!;
    expect(picture(restored.table as ChurnTable)).toEqual(atCut);
    await disk.dispose();
    await restored.table.dispose();
  });
});
