/**
 * An SMTP server a test owns, on 127.0.0.1 and a port of its own: it hands
 * every message to the test, which decides when (or whether) to answer it,
 * so a test can refuse mail by not running one, or hold SMTP's answer.
 */
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** The message as sent, with LF line ends and quoted-printable soft breaks undone. */
  text: string;
  /** Sends SMTP's 250 for it; a message never accepted is one the sender cannot know arrived. */
  accept(): void;
}

export class PrivateSmtp {
  private constructor(private readonly server: SMTPServer) {}

  static async start(port: number, onMail: (mail: ReceivedMail) => void): Promise<PrivateSmtp> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        let raw = '';
        stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
        stream.on('end', () => onMail({ text: raw.replace(/\r\n/g, '\n').replace(/=\n/g, ''), accept: () => callback() }));
      },
    });
    // A client dropping mid-message (the worker SIGKILLed) is not the test's failure.
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return new PrivateSmtp(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The value of a `name: value` line of a mail (a header, or a line of the alert body). */
export function mailLine(text: string, name: string): string | undefined {
  return new RegExp(`^${name}: (.+)$`, 'im').exec(text)?.[1]?.trim();
}
