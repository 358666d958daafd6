import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer as createTcpServer, type Server, type Socket } from "node:net";
import { describe, it } from "node:test";
import { boundPort, closeServer, listenOn } from "./listener.js";

/** A client connection to `port` that stays open until the server ends it; resolves once the server has it. */
async function openConnection(server: Server, port: number): Promise<Socket> {
  const accepted = once(server, "connection");
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  await accepted;
  return socket;
}

/** Resolves when the socket closes, reset or not. */
const closeOf = (socket: Socket): Promise<unknown> => new Promise((resolve) => socket.once("close", resolve));

describe("listenOn and closeServer", () => {
  it("bind a free port and report it, and close a plain TCP server with a connection its handler ignores", async () => {
    const server = createTcpServer(() => undefined);
    const port = await listenOn(server, "127.0.0.1", 0);
    assert.ok(port > 0);
    assert.equal(boundPort(server), port);
    const client = await openConnection(server, port);
    const ended = closeOf(client);
    await closeServer(server);
    await ended;
    assert.equal(boundPort(server), 0);
    assert.equal(server.listening, false);
  });

  it("close an HTTP server with an idle keep-alive connection and one waiting for its response", async () => {
    const server = createHttpServer((request, response) => (request.url === "/answered" ? response.end("ok") : undefined));
    const port = await listenOn(server, "127.0.0.1", 0);
    const idle = await openConnection(server, port);
    idle.write("GET /answered HTTP/1.1\r\nhost: x\r\n\r\n");
    await once(idle, "data");
    const waiting = await openConnection(server, port);
    waiting.write("GET /never HTTP/1.1\r\nhost: x\r\n\r\n");
    const closed = [closeOf(idle), closeOf(waiting)];
    await closeServer(server);
    await Promise.all(closed);
  });

  it("do nothing for a server that is not listening", async () => {
    await closeServer(createTcpServer());
  });
});
