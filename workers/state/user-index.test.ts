import { describe, expect, it } from 'vitest';
import { fingerprint, UserIndex } from './user-index.js';

describe('UserIndex', () => {
  it('maps ids to dense slots like a Map, through growth, for ASCII, non-ASCII and long ids', () => {
    const index = new UserIndex();
    const want = new Map<string, number>();
    const ids = Array.from({ length: 60_000 }, (_, i) => (i % 7 === 0 ? `ü-${i}` : i % 5 === 0 ? `${'x'.repeat(150)}${i}` : `u${i}`));
    const wrong: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const id of ids) {
        const slot = index.slot(id);
        if (!want.has(id)) want.set(id, want.size);
        if (slot !== want.get(id)) wrong.push(`slot of ${id}`);
      }
    }
    expect(index.size).toBe(ids.length);
    for (const [id, slot] of want) {
      const bytes = index.idBytes(slot);
      if (index.find(id) !== slot) wrong.push(`find ${id}`);
      if (index.id(slot) !== id || Buffer.from(bytes).toString('utf8') !== id) wrong.push(`id of ${slot}`);
      if (index.slotOfBytes(bytes, 0, bytes.length) !== slot) wrong.push(`bytes of ${id}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(index.find('nobody')).toBe(-1);
    expect(index.slotOfBytes(Buffer.from('ü-new'), 0, Buffer.byteLength('ü-new'))).toBe(ids.length);
    expect(index.find('ü-new')).toBe(ids.length);
  });

  it('fingerprints strings in 64 bits', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50_000; i++) seen.add(fingerprint(`cart-${i}`).join(':'));
    expect(seen.size).toBe(50_000);
    expect(fingerprint('c1')).toEqual(fingerprint('c1'));
  });
});
