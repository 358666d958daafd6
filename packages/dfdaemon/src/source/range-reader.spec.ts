import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { RangeFallbackError, RangeReader } from "./range-reader.js";

const content = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31) % 253));
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("RangeReader, the bulk path of back-to-source", () => {
  let server: Server;
  let base: string;
  let connections = 0;
  const sockets = new Set<Socket>();

  before(async () => {
    server = createServer((req, res) => {
      const match = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      const [start, end] = [Number(match?.[1]), Number(match?.[2])];
      if (req.url === "/ignores-range") return res.writeHead(200, { "content-length": content.byteLength }).end(content);
      if (req.url === "/redirects") return res.writeHead(302, { location: "/plain" }).end();
      if (req.url === "/chunked") {
        res.writeHead(206, { "content-range": `bytes ${start}-${end}/${content.byteLength}`, "transfer-encoding": "chunked" });
        return res.end(content.subarray(start, end + 1));
      }
      if (req.url === "/needs-token" && req.headers["x-token"] !== "yes") return res.writeHead(403).end();
      const body = content.subarray(start, end + 1);
      if (req.url === "/short") {
        res.writeHead(206, { "content-range": `bytes ${start}-${end}/${content.byteLength}`, "content-length": body.byteLength });
        res.write(body.subarray(0, 10), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      res.writeHead(206, { "content-range": `bytes ${start}-${end}/${content.byteLength}`, "content-length": body.byteLength }).end(body);
    });
    server.on("connection", (socket: Socket) => {
      connections++;
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("reads ranges into the piece's buffer over one keep-alive connection, with their SHA-256 and the caller's headers", async () => {
    const reader = new RangeReader({ allowLoopback: true });
    const before = connections;
    for (const [offset, length] of [
      [0, 65_536],
      [65_536, 300_000],
      [content.byteLength - 7, 7],
    ] as const) {
      const into = Buffer.alloc(length);
      const digest = await reader.read({ url: `${base}/needs-token`, headers: { "x-token": "yes" } }, offset, into);
      assert.deepEqual(into, content.subarray(offset, offset + length));
      assert.equal(digest, sha256(into));
    }
    assert.equal(connections - before, 1, "one connection for every read");
    reader.close();
  });

  it("leaves everything but a plain 206 to the full client", async () => {
    const reader = new RangeReader({ allowLoopback: true });
    for (const path of ["/ignores-range", "/redirects", "/chunked", "/needs-token"])
      await assert.rejects(reader.read({ url: `${base}${path}`, headers: {} }, 0, Buffer.alloc(100)), RangeFallbackError, path);
    reader.close();
  });

  it("a range the origin breaks off is an origin error, and a refused address never gets a request", async () => {
    const reader = new RangeReader({ allowLoopback: true });
    await assert.rejects(
      reader.read({ url: `${base}/short`, headers: {} }, 0, Buffer.alloc(1000)),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_ORIGIN_UNREACHABLE" && /broke after 10 of 1000/.test(err.message),
    );
    const strict = new RangeReader({ allowLoopback: false });
    const before = connections;
    await assert.rejects(
      strict.read({ url: `${base}/plain`, headers: {} }, 0, Buffer.alloc(10)),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_ORIGIN_REFUSED",
    );
    assert.equal(connections, before);
    reader.close();
    strict.close();
  });
});
