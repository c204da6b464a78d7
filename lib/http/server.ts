import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (req: IncomingMessage) => Promise<{ status: number; body: string; contentType?: string }>;

/** ':8080' listens on every interface, '127.0.0.1:0' on loopback with a free port. */
export function parseBindAddress(address: string): { host?: string; port: number } {
  const at = address.lastIndexOf(':');
  if (at < 0) throw new Error(`bind address '${address}' must be [host]:port, for example :8080 or 127.0.0.1:8080`);
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bind address '${address}' has an invalid port`);
  return { host: host || undefined, port };
}

export interface HttpEndpoint {
  /** host:port actually bound. */
  address: string;
  close(): Promise<void>;
}

/** A small HTTP server for /metrics or the health probes. */
export async function serve(bindAddress: string, routes: Record<string, Route>): Promise<HttpEndpoint> {
  const { host, port } = parseBindAddress(bindAddress);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const route = routes[(req.url ?? '/').split('?')[0]!];
    if (!route) {
      res.writeHead(404).end('not found\n');
      return;
    }
    route(req).then(
      (r) => res.writeHead(r.status, { 'Content-Type': r.contentType ?? 'text/plain; charset=utf-8' }).end(r.body),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
