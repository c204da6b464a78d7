import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { AlertDispatcher, alertCounter, alertKeys, alertRecord, certainlyNotDelivered, type CartAlert, type Mailer } from './alerts.js';
import { MemoryStore } from '../../runtime/memory-store.js';

const alert: CartAlert = { cartId: 'c1', userId: 'u1', score: 0.9, items: 2, value: 40, lastActivity: 0, abandonedAt: 3_600_000, modelVersion: 'm' };
const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ESOCKET', syscall: 'connect', command: 'CONN' });
const lostMidBody = Object.assign(new Error('socket closed'), { code: 'ESOCKET', command: 'DATA' });

class ScriptedMailer implements Mailer {
  sent: string[] = [];
  constructor(private readonly failures: Error[]) {}
  async send(m: { messageId: string }): Promise<void> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.sent.push(m.messageId);
  }
  close(): void {}
}

function dispatcher(store: MemoryStore, mailer: Mailer, holder: string, delivery: 'at-most-once' | 'at-least-once' = 'at-most-once'): AlertDispatcher {
  return new AlertDispatcher(store, mailer, { from: 'a@b.c', to: ['o@b.c'], delivery }, holder, alertCounter(new Registry()), pino({ level: 'silent' }));
}

describe('alert emails', () => {
  it('classifies failures before the message body as not delivered, and a lost body as uncertain', () => {
    expect(certainlyNotDelivered(refused)).toBe(true);
    expect(certainlyNotDelivered(Object.assign(new Error('550 no'), { responseCode: 550, command: 'DATA' }))).toBe(true);
    expect(certainlyNotDelivered(Object.assign(new Error('x'), { code: 'ESOCKET', command: 'RCPT TO' }))).toBe(true);
    expect(certainlyNotDelivered(lostMidBody)).toBe(false);
  });

  it('retries a refused send and then mails once; a replay by another worker does not mail again', async () => {
    const store = new MemoryStore();
    const mailer = new ScriptedMailer([refused, refused]);
    const d = dispatcher(store, mailer, 'w1');
    await expect(d.dispatch([alert])).rejects.toThrow(/SMTP send of alert for cart c1 failed/);
    await expect(d.dispatch([alert])).rejects.toThrow();
    await d.dispatch([alert]);
    expect(mailer.sent).toEqual(['<cart-c1@sluice.alerts>']);
    await dispatcher(store, mailer, 'w2').dispatch([alert]);
    expect(mailer.sent).toHaveLength(1);
    expect(store.records.get('alert:c1')?.email).toBe('sent');
  });

  it('never resends when the connection died while the message was being sent', async () => {
    const store = new MemoryStore();
    const mailer = new ScriptedMailer([lostMidBody]);
    await dispatcher(store, mailer, 'w1').dispatch([alert]);
    await dispatcher(store, mailer, 'w1').dispatch([alert]);
    await dispatcher(store, mailer, 'w2').dispatch([alert]);
    expect(mailer.sent).toEqual([]);
    expect(store.records.get('alert:c1')?.email).toBe('uncertain');
  });

  it('at least once: sends again, with the same Message-ID, when a connection died mid-send', async () => {
    const store = new MemoryStore();
    const mailer = new ScriptedMailer([lostMidBody]);
    await expect(dispatcher(store, mailer, 'w1', 'at-least-once').dispatch([alert])).rejects.toThrow(/ended without an answer/);
    await dispatcher(store, mailer, 'w1', 'at-least-once').dispatch([alert]);
    expect(mailer.sent).toEqual(['<cart-c1@sluice.alerts>']);
    expect(store.records.get('alert:c1')?.email).toBe('sent');
    // A replay after that finds 'sent': the guarantee adds no repeat of its own.
    await dispatcher(store, mailer, 'w2', 'at-least-once').dispatch([alert]);
    expect(mailer.sent).toHaveLength(1);
  });

  it('at least once: takes over the claim of a worker that died mid-send, and mails', async () => {
    const store = new MemoryStore();
    await store.writeRecords([alertRecord(alert, 'pending')]);
    expect((await store.claimOnce(alertKeys.email('c1'), 'dead')).kind).toBe('claimed');
    const mailer = new ScriptedMailer([]);
    await dispatcher(store, mailer, 'w2').dispatch([alert]);
    expect(mailer.sent).toEqual([]);
    await dispatcher(store, mailer, 'w3', 'at-least-once').dispatch([alert]);
    expect(mailer.sent).toEqual(['<cart-c1@sluice.alerts>']);
    expect(store.records.get('alert:c1')?.email).toBe('sent');
  });
});
