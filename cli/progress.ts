/**
 * One status line for long work: rewritten in place on a terminal, printed as
 * plain lines at most every `plainEveryMs` otherwise (logs, CI, pipes).
 */
export class Progress {
  private lastPlain = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainEveryMs = 5_000,
  ) {}

  update(line: string, now = Date.now()): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (now - this.lastPlain >= this.plainEveryMs) {
      this.stream.write(`${line}\n`);
      this.lastPlain = now;
    }
  }

  /** The final line, always printed. */
  done(line: string): void {
    if (this.stream.isTTY && this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`${line}\n`);
  }
}

export const formatCount = (n: number): string => Math.round(n).toLocaleString('en-US');
