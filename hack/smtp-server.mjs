// The test SMTP server: a real SMTP peer (the smtp-server package from the
// nodemailer project) that accepts every mail and keeps it as a raw RFC 5322
// .eml file, so tests can assert on exactly what was delivered.
//
//   node hack/smtp-server.mjs --port 32525 --maildir .infra/smtp/maildir [--host 127.0.0.1]
//
// Filenames sort by arrival (zero-padded epoch ms, then a counter), which is the
// order test/support/infra.ts receivedMails() returns. Each file is written under
// a temporary name and renamed, so a reader never sees half a message.
import { Buffer } from 'node:buffer';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';

const log = pino({ name: 'sluice-test-smtp' });

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '32525' },
    maildir: { type: 'string' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new Error(`--port must be an integer between 0 and 65535, got '${values.port}'`);
}
if (!values.maildir) throw new Error('--maildir is required: the directory the .eml files go to');
const maildir = resolve(values.maildir);
mkdirSync(maildir, { recursive: true });

let counter = 0;
function nextFileName() {
  counter += 1;
  return `${String(Date.now()).padStart(15, '0')}-${String(counter).padStart(8, '0')}.eml`;
}

const server = new SMTPServer({
  // Plain SMTP on loopback: no STARTTLS, so clients with default settings do not
  // try to upgrade to a self-signed certificate they would (rightly) reject.
  disabledCommands: ['STARTTLS'],
  // Workers may be configured with or without credentials; accept both.
  authOptional: true,
  allowInsecureAuth: true,
  authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
  onAuth(auth, _session, callback) {
    callback(null, { user: auth.username ?? 'anonymous' });
  },
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('error', callback);
    stream.on('end', () => {
      if (stream.sizeExceeded) {
        callback(new Error('message exceeds the server size limit'));
        return;
      }
      try {
        const name = nextFileName();
        const tmp = join(maildir, `.${name}.tmp`);
        writeFileSync(tmp, Buffer.concat(chunks));
        renameSync(tmp, join(maildir, name));
        log.info(
          {
            file: name,
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user ?? null,
            bytes: chunks.reduce((n, c) => n + c.length, 0),
          },
          'mail received',
        );
        callback(null, `queued as ${name}`);
      } catch (err) {
        log.error({ err }, 'could not store mail');
        callback(new Error(`could not store the message: ${err.message}`));
      }
    });
  },
});

server.on('error', (err) => log.error({ err }, 'smtp server error'));

server.listen(port, values.host, () => {
  const addr = server.server.address();
  log.info({ host: addr.address, port: addr.port, maildir }, 'smtp server listening');
});

function shutdown(signal) {
  log.info({ signal }, 'stopping');
  server.close(() => process.exit(0));
  // Open client connections must not keep a stopped server alive.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
