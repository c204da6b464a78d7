import { createServer, type Server } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { PortAllocator, portFree } from './ports.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listenAnywhere(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as { port: number }).port;
}

it('hands out metrics ports that nothing listens on and no other local job has recorded', async () => {
  const busy = await listenAnywhere();
  expect(await portFree(busy)).toBe(false);
  const ports = new PortAllocator(busy, new Set([busy + 1]));
  const first = await ports.take();
  const second = await ports.take();
  expect(first).toBeGreaterThan(busy + 1);
  expect(second).toBeGreaterThan(first);
  expect(await portFree(first)).toBe(true);
});
