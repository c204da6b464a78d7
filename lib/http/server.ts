/**
 * The small HTTP server behind `/metrics`, `/healthz` and `/readyz`, for the
 * operator and the workers alike: a route table, port 0 for a free port, and a
 * close that does not wait for idle keep-alive connections.
 */
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
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** The body of a 404, naming the routes there are. */
  notFound?: string;
}

function handler(routes: Record<string, Route>, options: ServeOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const route = routes[(req.url ?? '/').split('?')[0]!];
    if (!route) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(options.notFound ?? 'not found\n');
      return;
    }
    route(req).then(
      (r) => res.writeHead(r.status, { 'Content-Type': r.contentType ?? 'text/plain; charset=utf-8' }).end(r.body),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  };
}

/** Serves `routes` on `bindAddress` ([host]:port); rejects with the address when it cannot listen. */
export async function serve(bindAddress: string, routes: Record<string, Route>, options: ServeOptions = {}): Promise<HttpEndpoint> {
  const { host, port } = parseBindAddress(bindAddress);
  const server: Server = createServer(handler(routes, options));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot listen on ${bindAddress}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    port: a.port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `/healthz` (the process runs) and `/readyz` (`ready()` says whether, and why not). */
export function probeRoutes(ready: () => { ready: boolean; detail: string }): Record<string, Route> {
  return {
    '/healthz': async () => ({ status: 200, body: 'ok\n' }),
    '/readyz': async () => {
      const r = ready();
      return { status: r.ready ? 200 : 503, body: `${r.detail}\n` };
    },
  };
}

/** `/metrics` of a prom-client registry. */
export function metricsRoute(registry: { metrics(): Promise<string>; contentType: string }): Route {
  return async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType });
}
