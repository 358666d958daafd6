import { once } from "node:events";
import type { AddressInfo, Server, Socket } from "node:net";

/** The sockets of each server bound by listenOn, so closeServer can end them (plain TCP and TLS servers do not keep them). */
const connections = new WeakMap<Server, Set<Socket>>();

/**
 * Binds `server` (HTTP, TLS or plain TCP) to host:port (0 picks a free port)
 * and resolves with the bound port. Every connection it accepts from now on
 * is tracked, so closeServer can end it.
 */
export async function listenOn(server: Server, host: string, port: number): Promise<number> {
  if (!connections.has(server)) {
    const open = new Set<Socket>();
    connections.set(server, open);
    server.on("connection", (socket: Socket) => {
      open.add(socket);
      socket.once("close", () => open.delete(socket));
    });
  }
  server.listen(port, host);
  await once(server, "listening");
  return boundPort(server);
}

/** The port `server` is bound to; 0 when it is not listening. */
export function boundPort(server: Server): number {
  return (server.address() as AddressInfo | null)?.port ?? 0;
}

/**
 * Closes `server` and every connection on it: idle keep-alive ones, ones in
 * the middle of a response or a TLS handshake. Shutdown does not wait for
 * clients.
 */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of connections.get(server) ?? []) socket.destroy();
  await closed;
}
