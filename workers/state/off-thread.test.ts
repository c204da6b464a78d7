import { mkdtempSync, readdirSync, renameSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventGenerator } from '../events/generator.js';
import type { UserEvent } from '../events/types.js';
import { CART_FEATURES, CART_STATE_FORMAT, cartFeatures, CartTable, updateCart } from '../jobs/cart/features.js';
import { IoGate, PartitionCheckpoints } from './checkpoints.js';

const root = mkdtempSync(join(tmpdir(), 'sluice-off-thread-'));
const gate = new IoGate();
afterAll(() => rmSync(root, { recursive: true, force: true }));
const id = { jobType: 'cart', topic: 't', partition: 0, format: CART_STATE_FORMAT };
const events = [...new EventGenerator({ seed: 5, users: 5000, days: 6 })];
const policy = { compactRatio: 100, maxDeltas: 40, sliceMs: 0.2 };

function fold(t: CartTable, list: UserEvent[]): void {
  for (const e of list) updateCart(t, t.slot(e.userId), e);
}

/** Every user's features (open carts included, the records' tails) as of a fixed time. */
function picture(t: CartTable): Map<string, number[]> {
  const out = new Float32Array(CART_FEATURES.length);
  const m = new Map<string, number[]>();
  for (let s = 0; s < t.size; s++) {
    cartFeatures(t, s, events.at(-1)!.eventTime, out, 0);
    m.set(t.id(s), [...out]);
  }
  return m;
}

describe("the checkpoint encoder's thread", () => {
  it('writes base + deltas (by pages and by rows) that restore to the state at the last cut while users change, as the event loop would', async () => {
    const dir = join(root, 'a');
    const log = new PartitionCheckpoints(dir, id, policy, gate);
    const t = new CartTable();
    fold(t, events.slice(0, 20_000));
    const before = gate.thread.written;
    const outcomes = [];
    // A base; a delta of many users (copied by pages); a delta of a few (copied by rows).
    for (const [from, to] of [[20_000, 24_000], [24_000, 24_100], [24_100, 40_000]]) {
      const done = log.begin(t, {}, from)!;
      // Users change (and carts open and close) while it is copied and written: it must still hold the cut.
      for (let k = from; k < to; k += 500) {
        fold(t, events.slice(k, Math.min(to, k + 500)));
        await new Promise((r) => setImmediate(r));
      }
      outcomes.push((await done)!);
    }
    expect(outcomes.map((o) => o.kind)).toEqual(['base', 'delta', 'delta']);
    expect(outcomes[2].users).toBeLessThan(100);
    expect(gate.thread.written - before).toBe(3);
    const got = new PartitionCheckpoints(dir, id).load(() => new CartTable())!;
    expect(got.detail).toBe('base 1 + 2 deltas');
    expect(got.nextOffset).toBe(24_100);
    const atCut = new CartTable();
    fold(atCut, events.slice(0, 24_100));
    expect(picture(got.table as CartTable)).toEqual(picture(atCut));

    // The same table encoded on the event loop: a segment of the same size, restoring to the same state.
    const onLoop = new PartitionCheckpoints(join(root, 'b'), id, { ...policy, offThread: false }, new IoGate());
    const here = (await onLoop.begin(t, {}, 40_050, true))!;
    const there = (await log.begin(t, {}, 40_050, true))!;
    expect(there.bytes).toBe(here.bytes);
    expect(there.users).toBe(t.size);
    expect(picture(new PartitionCheckpoints(join(root, 'a'), id).load(() => new CartTable())!.table as CartTable)).toEqual(picture(t));
  });

  it("reports the file system's error, keeps the previous point and writes the users again next time; a torn segment of the thread's is found", async () => {
    const dir = join(root, 'c');
    const log = new PartitionCheckpoints(dir, id, policy, gate);
    const t = new CartTable();
    fold(t, events.slice(0, 5_000));
    await log.begin(t, {}, 5_000);
    fold(t, events.slice(5_000, 6_000));
    // The partition's directory is away: the thread cannot create the segment.
    renameSync(join(dir, '0'), join(dir, 'away'));
    await expect(log.begin(t, {}, 6_000)).rejects.toMatchObject({ code: 'ENOENT' });
    renameSync(join(dir, 'away'), join(dir, '0'));
    // The users of the failed one are written by the next.
    expect((await log.begin(t, {}, 6_000))!.kind).toBe('delta');
    const want = picture(t);
    expect(picture(new PartitionCheckpoints(dir, id).load(() => new CartTable())!.table as CartTable)).toEqual(want);
    const delta = readdirSync(join(dir, '0')).find((f) => f.startsWith('delta-'))!;
    truncateSync(join(dir, '0', delta), 64);
    const got = new PartitionCheckpoints(dir, id).load(() => new CartTable())!;
    expect(got.detail).toMatch(/^base 1; skipped: delta-.*(too short|torn)/);
    expect(got.nextOffset).toBe(5_000);
  });
});
