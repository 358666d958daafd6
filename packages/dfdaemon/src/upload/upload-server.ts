import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import type { TLSSocket } from "node:tls";
import { MEMBER_ROLES, closeServer, errorMessage, identityOfPeerCertificate, listenOn, type Logger, type TlsMaterial } from "@lacewing/common";
import type { DfdaemonMetrics } from "../metrics.js";
import type { TaskStore } from "../storage/task-store.js";
import { RateLimiter } from "./rate-limiter.js";
import { SuperSeed } from "./super-seed.js";
import { bearerToken, type UploadGrants } from "./upload-grants.js";

/** Path of one piece on a parent's upload server. */
export function piecePath(taskId: string, number: number): string {
  return `/tasks/${taskId}/pieces/${number}`;
}

const PIECE_PATH = /^\/tasks\/([0-9a-f]{64})\/pieces\/(\d{1,9})$/;

export interface UploadServerOptions {
  store: TaskStore;
  metrics: DfdaemonMetrics;
  log: Logger;
  /** Pieces served at once; more get 503 so the child asks another parent. */
  limit: number;
  /** Upload bytes per second over all children; 0 means unlimited. */
  rateLimit: number;
  /** Send each piece once per this many ms and let children trade it (seed peers); 0 is off. */
  superSeedWindowMs: number;
  /** Who may read which task: tokens handed out on SyncPieces. */
  grants: UploadGrants;
  /**
   * A connection on which nothing moves for this long is closed: a child that
   * stops reading gives its upload slot back after this, not never.
   */
  idleTimeoutMs: number;
  /** Serve over TLS, with client certificates of the cluster CA (--upload-tls); plain HTTP when undefined. */
  tls?: TlsMaterial;
}

/**
 * Serves verified pieces to other peers over HTTP/1.1 with keep-alive,
 * streamed from disk, to requests that carry an upload grant for the task
 * (401 otherwise). A piece is only served once it is journaled; the task is
 * held as a reader while a piece streams, so eviction waits.
 */
export class UploadServer {
  readonly #options: UploadServerOptions;
  readonly #server: Server;
  #active = 0;
  #uploadedBytes = 0;
  readonly #limiter: RateLimiter | undefined;
  readonly #superSeed: SuperSeed | undefined;

  constructor(options: UploadServerOptions) {
    this.#options = options;
    this.#limiter = options.rateLimit > 0 ? new RateLimiter(options.rateLimit) : undefined;
    this.#superSeed = options.superSeedWindowMs > 0 ? new SuperSeed(options.superSeedWindowMs) : undefined;
    const handle = (request: IncomingMessage, response: ServerResponse): void => void this.#handle(request, response);
    const tls = options.tls;
    this.#server =
      tls === undefined
        ? createServer({ keepAliveTimeout: 30_000 }, handle)
        : createTlsServer({ keepAliveTimeout: 30_000, ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true }, handle);
    if (tls !== undefined)
      this.#server.on("secureConnection", (socket: TLSSocket) => {
        const identity = identityOfPeerCertificate(socket.getPeerCertificate());
        if (identity === undefined || !MEMBER_ROLES.includes(identity.role)) socket.destroy();
      });
    // Idle or stalled connections (a client that stops reading, a half-sent request) are closed.
    this.#server.setTimeout(options.idleTimeoutMs);
    this.#server.headersTimeout = Math.min(10_000, options.idleTimeoutMs);
    this.#server.requestTimeout = options.idleTimeoutMs;
  }

  /** Uploads in flight right now. */
  get active(): number {
    return this.#active;
  }

  get uploadedBytes(): number {
    return this.#uploadedBytes;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  async listen(host: string, port: number): Promise<number> {
    return listenOn(this.#server, host, port);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const { store, metrics } = this.#options;
    const match = PIECE_PATH.exec((request.url ?? "/").split("?")[0]!);
    if (request.method !== "GET" || !match) {
      reply(response, request.method !== "GET" ? 405 : 404, "no such resource");
      return;
    }
    const [, taskId, numberText] = match as unknown as [string, string, string];
    if (!this.#options.grants.allows(bearerToken(request.headers.authorization), taskId)) {
      metrics.uploadPieces.inc({ result: "unauthorized" });
      reply(response, 401, "no upload grant for this task: sync pieces with this peer first");
      return;
    }
    const task = store.get(taskId);
    // One fstat per piece, none while the task is filled: bytes changed on disk since they were verified never reach a child.
    if (task && !(await task.checkUnchanged())) {
      metrics.uploadPieces.inc({ result: "verifying" });
      response.setHeader("retry-after", "1");
      reply(response, 503, "task data is being verified again");
      return;
    }
    // Checked and held in one synchronous step from here, so eviction cannot slip in between.
    const piece = task?.piece(Number(numberText));
    if (task === undefined || piece === undefined || task.closed) {
      metrics.uploadPieces.inc({ result: "not_found" });
      reply(response, 404, "piece not held");
      return;
    }
    if (this.#active >= this.#options.limit) {
      metrics.uploadPieces.inc({ result: "busy" });
      response.setHeader("retry-after", "1");
      reply(response, 503, "upload slots full");
      return;
    }
    const admission = this.#superSeed?.admit(task, piece.number) ?? { ok: true, first: false };
    if (!admission.ok) {
      metrics.uploadPieces.inc({ result: "elsewhere" });
      response.setHeader("x-lacewing-elsewhere", "1");
      reply(response, 503, "piece already sent: get it from another peer");
      return;
    }
    this.#active++;
    // Not closed (checked above), so acquire succeeds; releasing also counts as an access for the TTL.
    const release = task.acquire();
    response.writeHead(200, { "content-type": "application/octet-stream", "content-length": piece.length });
    const source = task.readStream(piece.offset, piece.length);
    source.on("data", (chunk: Buffer | string) => {
      const bytes = Buffer.byteLength(chunk);
      this.#uploadedBytes += bytes;
      metrics.uploadBytes.inc(bytes);
    });
    (this.#limiter ? pipeline(source, this.#limiter.throttle(), response) : pipeline(source, response))
      .then(
        () => {
          metrics.uploadPieces.inc({ result: "ok" });
          if (admission.first) this.#superSeed?.done(task, piece.number, true);
        },
        (err: unknown) => {
          if (admission.first) this.#superSeed?.done(task, piece.number, false);
          metrics.uploadPieces.inc({ result: "aborted" });
          this.#options.log.debug({ taskId, piece: piece.number, err: errorMessage(err) }, "piece upload aborted");
        },
      )
      .finally(() => {
        this.#active--;
        release?.();
      });
  }
}

function reply(response: ServerResponse, status: number, message: string): void {
  response.writeHead(status, { "content-type": "text/plain" }).end(`${message}\n`);
}
