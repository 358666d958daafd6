import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { MEMBER_ROLES, boundPort, closeServer, errorMessage, identityOfPeerCertificate, listenOn, type Logger, type TlsMaterial } from "@lacewing/common";
import type { DfdaemonMetrics } from "../metrics.js";
import type { PieceBuffers } from "../storage/piece-buffers.js";
import type { StoredPiece, StoredTask } from "../storage/stored-task.js";
import type { TaskStore } from "../storage/task-store.js";
import {
  readChildFrames,
  FrameType,
  ProtocolError,
  Refusal,
  decodeCancel,
  decodeRequest,
  encodePieceHeader,
  encodeRefused,
  type RefusalReason,
  type RequestFrame,
} from "../transfer/frames.js";
import { RateLimiter } from "./rate-limiter.js";
import { SuperSeed } from "./super-seed.js";
import type { UploadGrants } from "./upload-grants.js";

export interface UploadServerOptions {
  store: TaskStore;
  metrics: DfdaemonMetrics;
  log: Logger;
  /** Pieces being sent at once; a request past that is refused as busy, so the child asks another parent. */
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
  /** Memory for the chunks read from disk while they are sent. */
  buffers: PieceBuffers;
  /** Serve over TLS, with client certificates of the cluster CA (--upload-tls); plain TCP when undefined. */
  tls?: TlsMaterial;
}

/** Requests one connection may have waiting; a child pipelines a few, never this many. */
const MAX_QUEUED = 64;
/** Bytes read from disk and written to the socket at a time. */
const CHUNK = 512 * 1024;
/** What one upload slot holds in memory: two chunks, one read while the other is written. */
export const UPLOAD_MEMORY_PER_SLOT = 2 * CHUNK;
/** How long a refused child should wait before asking this parent again. */
export const RETRY_BUSY_MS = 300;
const RETRY_VERIFYING_MS = 1_000;

/**
 * Serves verified pieces to other peers over the framed protocol of
 * transfer/frames.ts: long-lived connections, requests answered in order,
 * each piece read from disk in large chunks into pooled buffers and written
 * with few syscalls. Only requests carrying an upload grant for their task
 * are served; a piece is only served once it is journaled, and the task is
 * held as a reader while it is sent, so eviction waits.
 */
export class UploadServer {
  readonly #options: UploadServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #active = 0;
  #uploadedBytes = 0;
  readonly #limiter: RateLimiter | undefined;
  readonly #superSeed: SuperSeed | undefined;

  constructor(options: UploadServerOptions) {
    this.#options = options;
    this.#limiter = options.rateLimit > 0 ? new RateLimiter(options.rateLimit) : undefined;
    this.#superSeed = options.superSeedWindowMs > 0 ? new SuperSeed(options.superSeedWindowMs) : undefined;
    const tls = options.tls;
    if (tls === undefined) {
      this.#server = createServer((socket) => this.#accept(socket));
    } else {
      this.#server = createTlsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
        const identity = identityOfPeerCertificate(socket.getPeerCertificate());
        if (identity === undefined || !MEMBER_ROLES.includes(identity.role)) socket.destroy();
        else this.#accept(socket);
      });
      // A handshake that never finishes must not hold a socket either.
      this.#server.on("connection", (socket: Socket) => socket.setTimeout(options.idleTimeoutMs, () => socket.destroy()));
    }
  }

  /** Pieces being sent right now. */
  get active(): number {
    return this.#active;
  }

  /** Children's connections open now. */
  get connections(): number {
    return this.#sockets.size;
  }

  get uploadedBytes(): number {
    return this.#uploadedBytes;
  }

  get port(): number {
    return boundPort(this.#server);
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.#server, host, port);
  }

  /** Ends every connection, children's and handshakes still under way. */
  close(): Promise<void> {
    return closeServer(this.#server);
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    new UploadConnection(socket, this.#options, {
      admit: (request) => this.#admit(request),
      sent: (bytes) => {
        this.#uploadedBytes += bytes;
        this.#options.metrics.uploadBytes.inc(bytes);
      },
      pace: (bytes) => this.#pace(bytes),
      chunkLength: this.#limiter === undefined ? CHUNK : Math.min(CHUNK, Math.max(64 * 1024, Math.floor(this.#options.rateLimit / 10))),
    });
  }

  async #pace(bytes: number): Promise<void> {
    const wait = this.#limiter?.reserve(bytes) ?? 0;
    if (wait > 0) await sleep(wait);
  }

  /**
   * Decides whether `request` is served now. When it is, the returned grant
   * holds an upload slot and the task until `end` is called.
   */
  async #admit(request: RequestFrame): Promise<Admission> {
    const { store, metrics, grants } = this.#options;
    const refuse = (reason: RefusalReason, result: string, message: string, retryAfterMs = 0): Admission => {
      metrics.uploadPieces.inc({ result });
      return { ok: false, reason, message, retryAfterMs };
    };
    if (!grants.allows(request.token, request.taskId))
      return refuse(Refusal.unauthorized, "unauthorized", "no upload grant for this task: sync pieces with this peer first");
    const task = store.get(request.taskId);
    // One fstat per piece, none while the task is filled: bytes changed on disk since they were verified never reach a child.
    if (task && !(await task.checkUnchanged())) return refuse(Refusal.verifying, "verifying", "task data is being verified again", RETRY_VERIFYING_MS);
    // Checked and held in one synchronous step from here, so eviction cannot slip in between.
    const piece = task?.piece(request.number);
    if (task === undefined || piece === undefined || task.closed) return refuse(Refusal.notFound, "not_found", "piece not held");
    if (this.#active >= this.#options.limit) return refuse(Refusal.busy, "busy", "upload slots full", RETRY_BUSY_MS);
    const admission = this.#superSeed?.admit(task, piece.number) ?? { ok: true, first: false };
    if (!admission.ok) return refuse(Refusal.elsewhere, "elsewhere", "piece already sent: get it from another peer");
    this.#active++;
    // Not closed (checked above), so acquire succeeds; releasing also counts as an access for the TTL.
    const release = task.acquire();
    return {
      ok: true,
      task,
      piece,
      end: (completed) => {
        this.#active--;
        release?.();
        if (admission.first) this.#superSeed?.done(task, piece.number, completed);
        metrics.uploadPieces.inc({ result: completed ? "ok" : "aborted" });
      },
    };
  }
}

type Admission =
  | {
      ok: true;
      task: StoredTask;
      piece: StoredPiece;
      end: (completed: boolean) => void;
    }
  | { ok: false; reason: RefusalReason; message: string; retryAfterMs: number };

interface ConnectionHooks {
  admit: (request: RequestFrame) => Promise<Admission>;
  sent: (bytes: number) => void;
  pace: (bytes: number) => Promise<void>;
  chunkLength: number;
}

/**
 * One child's connection: its requests, answered one at a time in order.
 * Any protocol violation, or nothing moving for the idle timeout, closes it.
 */
class UploadConnection {
  readonly #socket: Socket;
  readonly #options: UploadServerOptions;
  readonly #hooks: ConnectionHooks;
  readonly #queue: RequestFrame[] = [];
  readonly #cancelled = new Set<number>();
  #serving = false;
  #closed = false;

  constructor(socket: Socket, options: UploadServerOptions, hooks: ConnectionHooks) {
    this.#socket = socket;
    this.#options = options;
    this.#hooks = hooks;
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeoutMs, () => socket.destroy());
    readChildFrames(
      socket,
      (type, payload) => this.#onControl(type, payload),
      (err) => options.log.debug({ remote: socket.remoteAddress, err: errorMessage(err) }, "closing an upload connection that broke the protocol"),
    );
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.#closed = true;
    });
  }

  #onControl(type: number, payload: Buffer): void {
    if (type === FrameType.request) {
      if (this.#queue.length >= MAX_QUEUED) throw new ProtocolError(`more than ${MAX_QUEUED} requests waiting`);
      this.#queue.push(decodeRequest(payload));
      void this.#serveQueue();
    } else if (type === FrameType.cancel) {
      const id = decodeCancel(payload);
      if (this.#queue.some((request) => request.id === id)) this.#cancelled.add(id);
    } else {
      throw new ProtocolError(`a child sent frame type ${type}`);
    }
  }

  async #serveQueue(): Promise<void> {
    if (this.#serving) return;
    this.#serving = true;
    try {
      while (!this.#closed && this.#queue.length > 0) {
        const request = this.#queue.shift()!;
        if (this.#cancelled.delete(request.id)) {
          this.#socket.write(encodeRefused({ id: request.id, reason: Refusal.cancelled, retryAfterMs: 0, message: "cancelled" }));
          continue;
        }
        await this.#serve(request);
      }
    } catch (err) {
      this.#options.log.warn({ err: errorMessage(err) }, "upload connection failed");
      this.#socket.destroy();
    } finally {
      this.#serving = false;
    }
  }

  async #serve(request: RequestFrame): Promise<void> {
    const admission = await this.#hooks.admit(request);
    if (!admission.ok) {
      this.#socket.write(encodeRefused({ id: request.id, reason: admission.reason, retryAfterMs: admission.retryAfterMs, message: admission.message }));
      return;
    }
    let completed = false;
    try {
      completed = await this.#send(request.id, admission.task, admission.piece);
    } catch (err) {
      this.#options.log.debug({ taskId: request.taskId, piece: request.number, err: errorMessage(err) }, "piece upload aborted");
      this.#socket.destroy();
    } finally {
      admission.end(completed);
    }
  }

  /**
   * Sends the frame header, then the piece in chunks, reading the next chunk
   * from disk while the last one is written. False if the connection closed
   * first.
   */
  async #send(id: number, task: StoredTask, piece: StoredPiece): Promise<boolean> {
    const chunkLength = Math.min(this.#hooks.chunkLength, piece.length);
    const leases = [await this.#options.buffers.acquire(chunkLength)];
    try {
      if (piece.length > chunkLength) leases.push(await this.#options.buffers.acquire(chunkLength));
      let written: Promise<void> = this.#write(encodePieceHeader(id, piece.length));
      for (let at = 0, turn = 0; at < piece.length; at += chunkLength, turn++) {
        const chunk = leases[turn % leases.length]!.bytes.subarray(0, Math.min(chunkLength, piece.length - at));
        // The buffer read into now was written two turns ago; that write was awaited last turn.
        const read = await task.readAt(chunk, piece.offset + at);
        if (read !== chunk.byteLength) throw new Error(`piece data ends ${chunk.byteLength - read} bytes early`);
        await this.#hooks.pace(chunk.byteLength);
        await written;
        if (this.#closed) return false;
        written = this.#write(chunk);
        this.#hooks.sent(chunk.byteLength);
      }
      await written;
      return !this.#closed;
    } finally {
      for (const lease of leases) lease.release();
    }
  }

  /** Resolves once `bytes` are handed to the kernel; its failure is seen where it is awaited, never as an unhandled rejection. */
  #write(bytes: Buffer): Promise<void> {
    const written = new Promise<void>((resolve, reject) => {
      this.#socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
    written.catch(() => undefined);
    return written;
  }
}
