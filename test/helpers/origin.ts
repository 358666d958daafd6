import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface OriginFaults {
  /** Answer the first N requests with 500. */
  failFirst?: number;
  /** Cut the connection halfway through the Nth ranged response (1-based). */
  resetOnRequest?: number;
  /** Serve the whole body with 200, ignoring Range. */
  ignoreRange?: boolean;
  /** Announce this Content-Length instead of the real one (then close). */
  lieContentLength?: number;
  /** Never answer (until the server closes). */
  stall?: boolean;
  /** Serve the whole body with 200 and no Content-Length (chunked), ignoring Range: the length is unknown. */
  noLength?: boolean;
}

/**
 * An HTTP origin serving `files` (path → bytes) with Range support, counting
 * every body byte it sends, with optional faults.
 */
export class TestOrigin {
  bytesSent = 0;
  requests = 0;
  faults: OriginFaults = {};
  /** When set, requests without this header value get 401. */
  requireHeader: [name: string, value: string] | undefined;
  /** Requests refused for a missing or wrong required header. */
  rejected = 0;
  /** Body bytes per second over all responses together; 0 for unlimited. */
  bytesPerSecond = 0;
  /** When the rate limiter lets the next chunk out. */
  #nextSendAt = 0;
  /** Send an ETag and a Last-Modified with every file (of its current version), as object stores and web servers do. */
  validators = false;
  readonly #files: Map<string, Buffer>;
  /** Bumped by replace(): each version of a file has its own ETag and Last-Modified. */
  readonly #versions = new Map<string, number>();
  readonly #server: Server;

  constructor(files: Record<string, Buffer>) {
    this.#files = new Map(Object.entries(files));
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 5_000;
  }

  async start(host = "127.0.0.1", port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(port, host, resolve));
    return this.url("");
  }

  url(path: string): string {
    const { address, port } = this.#server.address() as AddressInfo;
    return `http://${address}:${port}${path}`;
  }

  /** Serves new bytes under `path` from now on, as an object overwritten under the same key. */
  replace(path: string, bytes: Buffer): void {
    this.#files.set(path, bytes);
    this.#versions.set(path, (this.#versions.get(path) ?? 0) + 1);
  }

  #validatorsOf(path: string): Record<string, string> {
    if (!this.validators) return {};
    const version = this.#versions.get(path) ?? 0;
    return { etag: `"v${version}-${this.#files.get(path)?.byteLength ?? 0}"`, "last-modified": new Date(Date.UTC(2026, 0, 1 + version)).toUTCString() };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #send(res: ServerResponse, bytes: Buffer): void {
    if (this.bytesPerSecond > 0) {
      void this.#sendSlowly(res, bytes);
      return;
    }
    this.bytesSent += bytes.byteLength;
    res.end(bytes);
  }

  /** Sends in 64 KiB chunks paced by one shared budget, counting only what was written. */
  async #sendSlowly(res: ServerResponse, bytes: Buffer): Promise<void> {
    const chunk = 64 * 1024;
    for (let at = 0; at < bytes.byteLength; at += chunk) {
      const now = Date.now();
      const slot = Math.max(now, this.#nextSendAt);
      this.#nextSendAt = slot + (chunk / this.bytesPerSecond) * 1000;
      if (slot > now) await new Promise((resolve) => setTimeout(resolve, slot - now));
      if (res.destroyed) return;
      const part = bytes.subarray(at, at + chunk);
      this.bytesSent += part.byteLength;
      if (!res.write(part)) await drainedOrClosed(res);
    }
    res.end();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    if (this.faults.stall) return;
    if (this.requireHeader !== undefined && req.headers[this.requireHeader[0]] !== this.requireHeader[1]) {
      this.rejected++;
      res.writeHead(401, { "www-authenticate": 'Bearer realm="test"' }).end("unauthorized");
      return;
    }
    const path = (req.url ?? "").split("?")[0] ?? "";
    const body = this.#files.get(path);
    if ((this.faults.failFirst ?? 0) >= this.requests) {
      res.writeHead(500).end("boom");
      return;
    }
    if (!body) {
      res.writeHead(404).end("not found");
      return;
    }
    if (this.faults.lieContentLength !== undefined) {
      res.writeHead(200, { "content-length": String(this.faults.lieContentLength) });
      this.bytesSent += body.byteLength;
      res.write(body);
      res.socket?.destroy();
      return;
    }
    if (this.faults.noLength) {
      res.writeHead(200);
      this.#send(res, body);
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (!range || this.faults.ignoreRange) {
      res.writeHead(200, { "content-length": String(body.byteLength), ...this.#validatorsOf(path) });
      this.#send(res, body);
      return;
    }
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), body.byteLength - 1) : body.byteLength - 1;
    if (start >= body.byteLength) {
      res.writeHead(416, { "content-range": `bytes */${body.byteLength}` }).end();
      return;
    }
    const slice = body.subarray(start, end + 1);
    res.writeHead(206, {
      "content-range": `bytes ${start}-${end}/${body.byteLength}`,
      "content-length": String(slice.byteLength),
      ...this.#validatorsOf(path),
    });
    if (this.faults.resetOnRequest === this.requests) {
      const half = slice.subarray(0, slice.byteLength >> 1);
      this.bytesSent += half.byteLength;
      res.write(half, () => res.socket?.destroy());
      return;
    }
    this.#send(res, slice);
  }
}

/** Deterministic pseudo-random bytes (fast, not crypto). */
export function randomBytesOf(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (let i = size - (size % 4); i < size; i++) out[i] = i & 0xff;
  return out;
}

/** Resolves on the response's next "drain" or its "close", removing the other listener. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done).off("close", done);
      resolve();
    };
    res.once("drain", done).once("close", done);
  });
}
