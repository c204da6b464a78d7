import { simpleParser, type AddressObject } from 'mailparser';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { receivedMails, smtp, uniqueName } from '../support/infra.js';

// Proves hack/smtp.sh started a real SMTP peer: nodemailer delivers over SMTP
// and the message comes back, intact, from the maildir the server writes.
async function findMail(subject: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const raw of receivedMails()) {
      const mail = await simpleParser(raw);
      if (mail.subject === subject) return mail;
    }
    if (Date.now() > deadline) throw new Error(`no mail with subject '${subject}' in ${smtp().maildir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((a) => a.value.map((v) => v.address ?? ''));
}

describe('smtp from hack/smtp.sh', () => {
  it('keeps a mail sent without authentication', async () => {
    const { host, port } = smtp();
    const transport = nodemailer.createTransport({ host, port, secure: false });
    const subject = uniqueName('infra-smtp-plain');
    const info = await transport.sendMail({
      from: 'alerts@sluice.test',
      to: 'shopper-7@example.test',
      subject,
      text: 'Your cart is waiting: 2 items, 59.90 EUR.',
    });
    transport.close();
    expect(info.accepted).toEqual(['shopper-7@example.test']);

    const mail = await findMail(subject);
    expect(addresses(mail.to)).toEqual(['shopper-7@example.test']);
    expect(addresses(mail.from)).toEqual(['alerts@sluice.test']);
    expect(mail.text?.trim()).toBe('Your cart is waiting: 2 items, 59.90 EUR.');
  });

  it('accepts AUTH and keeps an HTML mail with several recipients', async () => {
    const { host, port } = smtp();
    const transport = nodemailer.createTransport({
      host,
      port,
      secure: false,
      auth: { user: 'sluice', pass: 'any-password' },
    });
    await transport.verify();
    const subject = uniqueName('infra-smtp-auth');
    await transport.sendMail({
      from: 'Sluice <alerts@sluice.test>',
      to: ['a@example.test', 'b@example.test'],
      subject,
      html: '<p>Still thinking about <b>Blue shoes</b>?</p>',
    });
    transport.close();

    const mail = await findMail(subject);
    expect(addresses(mail.to)).toEqual(['a@example.test', 'b@example.test']);
    expect(mail.html).toContain('<b>Blue shoes</b>');
  });
});
