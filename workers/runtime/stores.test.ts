import { describe, expect, it } from 'vitest';
import { MemoryStore } from './memory-store.js';

describe('MemoryStore exactly-once markers', () => {
  it('lets one holder send, refuses a replay after sent, and never resends after an uncertain attempt', async () => {
    const s = new MemoryStore();
    expect(await s.claimOnce('c1', 'w1')).toEqual({ kind: 'claimed' });
    expect(await s.claimOnce('c1', 'w2')).toEqual({ kind: 'uncertain', holder: 'w1' });
    await s.finishOnce('c1', 'w1', 'failed');
    expect(await s.claimOnce('c1', 'w2')).toEqual({ kind: 'claimed' });
    await s.finishOnce('c1', 'w2', 'sent');
    expect(await s.claimOnce('c1', 'w3')).toEqual({ kind: 'sent' });
    await s.claimOnce('c2', 'w1');
    await s.finishOnce('c2', 'w1', 'uncertain');
    expect((await s.claimOnce('c2', 'w1')).kind).toBe('uncertain');
  });
});
