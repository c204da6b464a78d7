import { createServer } from 'node:net';

/** True when nothing listens on `port` of `host` now (a bind succeeds). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Hands out metrics ports from `start` upward, skipping any port in `reserved`
 * (those of other local jobs that are still running) and any a bind finds in
 * use, so that two jobs, or a job and another program, never share one. A port
 * can still be taken between this check and the worker's own bind: the
 * supervisor checks again before each (re)start.
 */
export class PortAllocator {
  private next: number;
  private readonly given = new Set<number>();

  constructor(
    start: number,
    private readonly reserved: ReadonlySet<number> = new Set(),
    private readonly limit = 200,
  ) {
    this.next = start;
  }

  async take(): Promise<number> {
    for (let tries = 0; tries < this.limit && this.next <= 65535; tries++) {
      const port = this.next++;
      if (this.given.has(port) || this.reserved.has(port)) continue;
      if (await portFree(port)) {
        this.given.add(port);
        return port;
      }
    }
    throw new Error(`no free TCP port for worker metrics within ${this.limit} ports from the last tried (${this.next - 1}); pass --metrics-port`);
  }
}
