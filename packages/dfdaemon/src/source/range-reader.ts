import { createHash } from "node:crypto";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { ErrorCode, errorMessage, isLacewingError } from "@lacewing/common";
import { daemonError } from "../errors.js";
import { checkOriginUrl, policyLookup, type OriginPolicy, isRefusedAddress } from "./origin-policy.js";

/**
 * The bulk path of a back-to-source fetch: `GET` with `Range` over lean
 * HTTP/1.1 keep-alive connections that read straight into a piece's buffer
 * (one fixed read buffer per connection, no stream or chunk objects per
 * read), hashing each piece once. It speaks only the plain case — a 206
 * with exactly the asked range and a Content-Length — and answers anything
 * else (a redirect, another status, chunked encoding) with a
 * RangeFallbackError, for the caller to ask the full client
 * (origin-client.ts), which follows redirects and reports statuses.
 */

export interface RangeTarget {
  /** Where the bytes are: the origin URL, or where its redirects led. */
  url: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
}

/** This reader does not handle the origin's answer; the full client must. */
export class RangeFallbackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RangeFallbackError";
  }
}

const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 64 * 1024;
const IDLE_MS = 30_000;
/** Headers this reader sets itself. */
const OWN_HEADERS = new Set(["host", "range", "connection", "content-length", "transfer-encoding", "accept-encoding"]);

export class RangeReader {
  readonly #policy: OriginPolicy;
  readonly #idle = new Map<string, RangeConnection[]>();

  constructor(policy: OriginPolicy) {
    this.#policy = policy;
  }

  /**
   * Reads bytes [offset, offset + into.length) of `target` into `into` and
   * resolves with their SHA-256 (hex). Rejects with a RangeFallbackError
   * when the origin's answer needs the full client, or with the daemon's
   * origin errors when it cannot be reached or breaks off.
   */
  async read(target: RangeTarget, offset: number, into: Buffer): Promise<string> {
    const url = new URL(target.url);
    checkOriginUrl(url, this.#policy);
    const key = `${url.protocol}//${url.host}`;
    const connection = this.#idle.get(key)?.pop() ?? new RangeConnection(url, this.#policy);
    try {
      const sha256 = await connection.get(url, target.headers, offset, into, target.signal);
      if (connection.reusable) {
        connection.park();
        const idle = this.#idle.get(key) ?? [];
        idle.push(connection);
        this.#idle.set(key, idle);
        connection.onClose(() => {
          const list = this.#idle.get(key);
          if (list !== undefined)
            this.#idle.set(
              key,
              list.filter((c) => c !== connection),
            );
        });
      } else connection.destroy();
      return sha256;
    } catch (err) {
      connection.destroy();
      throw err;
    }
  }

  close(): void {
    for (const list of this.#idle.values()) for (const connection of list) connection.destroy();
    this.#idle.clear();
  }
}

/** One keep-alive connection, one request at a time. */
class RangeConnection {
  readonly #socket: Socket;
  readonly #host: string;
  #reusable = true;
  #closed = false;
  #closeHooks: Array<() => void> = [];
  /** What the current request does with bytes read; undefined between requests. */
  #onBytes: ((bytes: Uint8Array, length: number) => void) | undefined;
  #onEnd: ((err: Error) => void) | undefined;

  constructor(url: URL, policy: OriginPolicy) {
    this.#host = url.host;
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const onread = {
      buffer: Buffer.allocUnsafe(READ_BUFFER),
      callback: (length: number, buffer: Uint8Array): boolean => {
        this.#onBytes?.(buffer, length);
        return true;
      },
    };
    if (url.protocol === "https:") {
      // onread works on TLS sockets too (Node 20 and 24); @types/node only lists it for net.
      const options: ConnectionOptions & { onread: typeof onread } = {
        host,
        port,
        servername: host,
        ALPNProtocols: ["http/1.1"],
        lookup: policyLookup(policy),
        onread,
      };
      this.#socket = connectTls(options);
    } else {
      this.#socket = connectTcp({ host, port, lookup: policyLookup(policy), onread, noDelay: true });
    }
    this.#socket.setTimeout(IDLE_MS, () => this.#fail(new Error(`origin sent nothing for ${IDLE_MS} ms`)));
    this.#socket.on("error", (err) => this.#fail(err));
    this.#socket.on("close", () => {
      this.#closed = true;
      this.#fail(new Error("origin closed the connection"));
      for (const hook of this.#closeHooks) hook();
    });
  }

  get reusable(): boolean {
    return this.#reusable && !this.#closed;
  }

  /** Idle in the pool: it does not keep the process alive. */
  park(): void {
    this.#socket.unref();
  }

  onClose(hook: () => void): void {
    this.#closeHooks.push(hook);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #fail(err: Error): void {
    const onEnd = this.#onEnd;
    this.#onEnd = undefined;
    this.#onBytes = undefined;
    onEnd?.(err);
  }

  get(url: URL, headers: Record<string, string>, offset: number, into: Buffer, signal: AbortSignal | undefined): Promise<string> {
    const end = offset + into.byteLength - 1;
    const what = `bytes ${offset}-${end}`;
    return new Promise<string>((resolve, reject) => {
      if (this.#closed) return reject(unreachable(url, new Error("connection closed")));
      if (signal?.aborted === true) return reject(signal.reason);
      this.#socket.ref();
      let head = Buffer.alloc(0);
      let received = -1;
      const finish = (err: Error | undefined): void => {
        signal?.removeEventListener("abort", onAbort);
        this.#onBytes = undefined;
        this.#onEnd = undefined;
        if (err === undefined) resolve(createHash("sha256").update(into).digest("hex"));
        else reject(err);
      };
      const onAbort = (): void => {
        this.#reusable = false;
        this.#socket.destroy();
        finish(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#onEnd = (err) => {
        this.#reusable = false;
        if (err instanceof RangeFallbackError || isLacewingError(err)) return finish(err);
        if (isRefusedAddress(err))
          return finish(daemonError(ErrorCode.originRefused, "permission_denied", `refusing to fetch from ${url.host}: ${err.message}`, err));
        if (received < 0) return finish(unreachable(url, err));
        const broke = `connection to origin broke after ${received} of ${into.byteLength} bytes of ${what}: ${errorMessage(err)}`;
        finish(daemonError(ErrorCode.originUnreachable, "unavailable", broke, err));
      };
      this.#onBytes = (bytes, length) => {
        // The read buffer is reused: what is kept of it is copied out.
        let body = bytes.subarray(0, length);
        if (received < 0) {
          head = Buffer.concat([head, body]);
          const headEnd = head.indexOf("\r\n\r\n");
          if (headEnd < 0) {
            if (head.byteLength > MAX_HEAD) this.#fail(new RangeFallbackError("the response head is too large"));
            return;
          }
          const problem = this.#checkHead(head.toString("latin1", 0, headEnd), offset, end, into.byteLength);
          if (problem !== undefined) return this.#fail(new RangeFallbackError(problem));
          body = head.subarray(headEnd + 4);
          received = 0;
        }
        if (received + body.byteLength > into.byteLength) {
          // Bytes past the range: the connection is out of step with its responses.
          this.#fail(daemonError(ErrorCode.originProtocol, "unavailable", `origin sent more than the ${into.byteLength} bytes of ${what}`));
          return;
        }
        into.set(body, received);
        received += body.byteLength;
        if (received === into.byteLength) finish(undefined);
      };
      const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${this.#host}`, `Range: bytes=${offset}-${end}`, "Connection: keep-alive"];
      for (const [name, value] of Object.entries(headers)) if (!OWN_HEADERS.has(name.toLowerCase())) lines.push(`${name}: ${value}`);
      this.#socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
    });
  }

  /** Why this head is not the plain 206 this reader handles, or undefined. */
  #checkHead(head: string, start: number, end: number, length: number): string | undefined {
    const [statusLine, ...headerLines] = head.split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1];
    if (status !== "206") return `origin answered ${status ?? "something that is not HTTP/1.1"}`;
    const fields = new Map<string, string>();
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (fields.has("transfer-encoding")) return "a chunked range";
    if (Number(fields.get("content-length")) !== length) return `a range of ${fields.get("content-length")} bytes, not ${length}`;
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(fields.get("content-range") ?? "");
    if (range === null || Number(range[1]) !== start || Number(range[2]) !== end)
      return `content-range ${fields.get("content-range")} for bytes ${start}-${end}`;
    if (/\bclose\b/i.test(fields.get("connection") ?? "")) this.#reusable = false;
    return undefined;
  }
}

function unreachable(url: URL, err: Error): Error {
  return daemonError(ErrorCode.originUnreachable, "unavailable", `cannot reach origin ${url.host}: ${err.message}`, err);
}
