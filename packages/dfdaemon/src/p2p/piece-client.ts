import { createHash } from "node:crypto";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, type ConnectionOptions } from "node:tls";
import { checkServerRole } from "@lacewing/api";
import { MAX_PIECE_LENGTH, MEMBER_ROLES, errorMessage, type Security } from "@lacewing/common";
import type { PieceFailureReason } from "../metrics.js";
import type { PieceBuffer, PieceBuffers } from "../storage/piece-buffers.js";
import {
  FrameDecoder,
  FrameType,
  PREFACE,
  ProtocolError,
  Refusal,
  decodeRefused,
  encodeCancel,
  encodeRequest,
  type RefusalReason,
} from "../transfer/frames.js";

/** A piece a parent could not deliver, and why. */
export class PieceFetchError extends Error {
  constructor(
    readonly reason: PieceFailureReason,
    message: string,
    /** For a busy parent: how long it asked to be left alone. */
    readonly retryAfterMs = 0,
  ) {
    super(message);
    this.name = "PieceFetchError";
  }
}

/** A parent's download port. */
export interface PieceSource {
  ip: string;
  port: number;
  /** The port speaks TLS (--upload-tls on the parent). */
  tls: boolean;
}

export interface PieceRequest {
  taskId: string;
  number: number;
  length: number;
  /** The piece's SHA-256 (hex) as the scheduler gave it: the bytes must match it, whatever the parent says. */
  sha256: string;
  /** The parent's upload grant for this task, from SyncPieces. */
  token: string;
  /** Longest the connection may go without a byte while this request waits on it. */
  timeoutMs: number;
  signal: AbortSignal;
}

/** A connection without requests for this long is closed; the next request opens another. */
const IDLE_MS = 5_000;
/** Bytes one read from the socket may bring. */
const READ_BUFFER = 256 * 1024;

/**
 * The child's side of the piece protocol (transfer/frames.ts): one
 * connection per parent download port, shared by every download of the
 * daemon, requests pipelined on it, each piece read straight into a buffer
 * leased from the daemon's piece memory and checked against the scheduler's
 * SHA-256 before anyone sees it. A parent whose port speaks TLS must
 * present a cluster member's certificate, and gets this daemon's.
 */
export class PieceClient {
  readonly #security: Security;
  readonly #buffers: PieceBuffers;
  readonly #connections = new Map<string, PieceConnection>();

  constructor(security: Security, buffers: PieceBuffers) {
    this.#security = security;
    this.#buffers = buffers;
  }

  /** The piece's verified bytes, in a lease the caller releases once it has stored them. Rejects with a PieceFetchError. */
  async fetch(source: PieceSource, request: PieceRequest): Promise<PieceBuffer> {
    let lease: PieceBuffer;
    try {
      lease = await this.#buffers.acquire(request.length, request.signal);
    } catch {
      throw new PieceFetchError("other", "download cancelled");
    }
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#connectionTo(source).fetch(request, lease.bytes);
          return lease;
        } catch (err) {
          // A reused connection the parent closed as idle just as this request went out: one more try on a fresh one.
          if (err instanceof StaleConnectionError && attempt === 0) continue;
          throw err instanceof StaleConnectionError ? new PieceFetchError("connect", err.message) : err;
        }
      }
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  #connectionTo(source: PieceSource): PieceConnection {
    const key = `${source.tls ? "tls" : "tcp"}:${source.ip}:${source.port}`;
    let connection = this.#connections.get(key);
    if (connection === undefined || connection.closed) {
      connection = new PieceConnection(source, this.#security, () => {
        if (this.#connections.get(key) === connection) this.#connections.delete(key);
      });
      this.#connections.set(key, connection);
    }
    return connection;
  }

  close(): void {
    for (const connection of this.#connections.values()) connection.destroy();
    this.#connections.clear();
  }
}

class StaleConnectionError extends Error {}

interface Pending {
  id: number;
  request: PieceRequest;
  buffer: Buffer;
  /** Its answer has begun arriving. */
  receiving: boolean;
  /** Given up on by the child (cancelled); its answer is skipped when it comes. */
  abandoned: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
  unhook: () => void;
}

/** One connection to a parent's download port and the requests waiting on it, in the order sent. */
class PieceConnection {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #pending: Pending[] = [];
  readonly #onClose: () => void;
  #nextId = 1;
  #answered = 0;
  #closed = false;
  /**
   * Fires when no byte has come from the parent for the head request's
   * timeout while requests wait. Only bytes received count: the socket's own
   * idle timeout also counts our writes, and a child keeps writing new
   * requests to a parent whose link is gone.
   */
  #stall: NodeJS.Timeout | undefined;

  constructor(source: PieceSource, security: Security, onClose: () => void) {
    this.#onClose = onClose;
    this.#decoder = new FrameDecoder(
      {
        control: (type, payload) => this.#onControl(type, payload),
        pieceStart: (id, length) => this.#onPieceStart(id, length),
        pieceEnd: (id) => this.#onPieceEnd(id),
      },
      { preface: false, maxPiece: MAX_PIECE_LENGTH },
    );
    const onread = {
      buffer: Buffer.allocUnsafe(READ_BUFFER),
      callback: (length: number, buffer: Uint8Array): boolean => {
        this.#stall?.refresh();
        try {
          this.#decoder.push(buffer, length);
        } catch (err) {
          this.#failAll(err instanceof ProtocolError ? "corrupt" : "other", `parent broke the piece protocol: ${errorMessage(err)}`);
        }
        return true;
      },
    };
    if (source.tls && security.mode === "tls") {
      // onread works on TLS sockets too (Node 20 and 24); @types/node only lists it for net.
      const options: ConnectionOptions & { onread: typeof onread } = {
        host: source.ip,
        port: source.port,
        ca: security.material.ca,
        cert: security.material.cert,
        key: security.material.key,
        servername: "lacewing",
        checkServerIdentity: (_host, cert) => checkServerRole(cert, MEMBER_ROLES),
        onread,
      };
      this.#socket = connectTls(options);
    } else {
      this.#socket = connectTcp({ host: source.ip, port: source.port, onread, noDelay: true });
    }
    this.#socket.write(PREFACE);
    this.#socket.setTimeout(IDLE_MS, () => this.#onTimeout());
    this.#socket.on("error", (err) => this.#failAll("connect", `cannot fetch pieces from parent: ${errorMessage(err)}`));
    this.#socket.on("close", () => this.#failAll("connect", "parent closed the piece connection"));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Fills `buffer` with the verified piece; rejects with a PieceFetchError (or a StaleConnectionError, to try again elsewhere). */
  fetch(request: PieceRequest, buffer: Buffer): Promise<void> {
    if (this.#closed) return Promise.reject(new StaleConnectionError("parent closed the piece connection"));
    if (request.signal.aborted) return Promise.reject(new PieceFetchError("other", "download cancelled"));
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = { id: this.#nextId++, request, buffer, receiving: false, abandoned: false, resolve, reject, unhook: () => undefined };
      const onAbort = (): void => this.#abandon(pending);
      request.signal.addEventListener("abort", onAbort, { once: true });
      pending.unhook = () => request.signal.removeEventListener("abort", onAbort);
      this.#pending.push(pending);
      if (this.#pending.length === 1) {
        this.#socket.ref();
        this.#armStall(request.timeoutMs);
      }
      this.#socket.write(encodeRequest({ id: pending.id, number: request.number, taskId: request.taskId, token: request.token }));
    });
  }

  destroy(): void {
    this.#socket.destroy();
  }

  /** The child no longer wants the piece: the parent skips it if it has not started; bytes already on their way are dropped. */
  #abandon(pending: Pending): void {
    if (pending.abandoned || !this.#pending.includes(pending)) return;
    pending.abandoned = true;
    if (pending.receiving) this.#decoder.discardPiece();
    else this.#socket.write(encodeCancel(pending.id));
    this.#settle(pending, new PieceFetchError("other", "download cancelled"));
  }

  #settle(pending: Pending, err?: unknown): void {
    pending.unhook();
    if (err === undefined) pending.resolve();
    else pending.reject(err);
  }

  /** The request the next answer must be for. */
  #head(id: number): Pending {
    const head = this.#pending[0];
    if (head === undefined || head.id !== id) throw new ProtocolError(`an answer to request ${id}, expected ${head === undefined ? "none" : head.id}`);
    return head;
  }

  #answeredHead(): Pending {
    const head = this.#pending.shift()!;
    this.#answered++;
    const next = this.#pending[0];
    if (next === undefined) {
      clearTimeout(this.#stall);
      this.#stall = undefined;
      // Idle, it does not keep the process alive.
      this.#socket.unref();
    } else this.#armStall(next.request.timeoutMs);
    return head;
  }

  /** (Re)starts the stall timer for the request now at the head. */
  #armStall(timeoutMs: number): void {
    clearTimeout(this.#stall);
    this.#stall = setTimeout(() => this.#failAll("timeout", `parent sent nothing for ${timeoutMs} ms`), timeoutMs);
  }

  #onControl(type: number, payload: Buffer): void {
    if (type !== FrameType.refused) throw new ProtocolError(`a parent sent frame type ${type}`);
    const refused = decodeRefused(payload);
    this.#head(refused.id);
    const pending = this.#answeredHead();
    if (pending.abandoned) return;
    const { number } = pending.request;
    this.#settle(pending, refusalError(refused.reason, number, refused.message, refused.retryAfterMs));
  }

  #onPieceStart(id: number, length: number): Buffer | undefined {
    const pending = this.#head(id);
    pending.receiving = true;
    if (length !== pending.request.length)
      throw new ProtocolError(`parent sent ${length} bytes for piece ${pending.request.number}, not ${pending.request.length}`);
    return pending.abandoned ? undefined : pending.buffer;
  }

  #onPieceEnd(id: number): void {
    this.#head(id);
    const pending = this.#answeredHead();
    if (pending.abandoned) return;
    const { number, sha256 } = pending.request;
    const actual = createHash("sha256").update(pending.buffer).digest("hex");
    if (actual !== sha256) this.#settle(pending, new PieceFetchError("corrupt", `piece ${number} from parent does not match the scheduler's SHA-256`));
    else this.#settle(pending, undefined);
  }

  /** No new request goes on this connection from now on. */
  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
  }

  /** The socket idle (no byte either way) for IDLE_MS: closed if nothing waits; a waiting request has its own stall timer. */
  #onTimeout(): void {
    if (this.#pending.length > 0) return;
    this.#markClosed();
    this.#socket.end();
  }

  /**
   * Ends the connection and every request on it. The first request gets
   * `reason`; requests the parent had not begun to answer on a connection
   * that had served before may have crossed its idle close, and are tried
   * once more.
   */
  #failAll(reason: PieceFailureReason, message: string): void {
    clearTimeout(this.#stall);
    this.#stall = undefined;
    this.#markClosed();
    this.#socket.destroy();
    const pending = this.#pending.splice(0);
    pending.forEach((request, index) => {
      if (request.abandoned) return;
      const stale = !request.receiving && this.#answered > 0 && reason === "connect";
      const forThis = index === 0 || reason === "timeout" ? reason : "connect";
      this.#settle(request, stale ? new StaleConnectionError(message) : new PieceFetchError(forThis, `piece ${request.request.number}: ${message}`));
    });
  }
}

function refusalError(reason: RefusalReason, number: number, message: string, retryAfterMs: number): PieceFetchError {
  switch (reason) {
    case Refusal.notFound:
      return new PieceFetchError("not_found", `parent no longer holds piece ${number}`);
    case Refusal.busy:
    case Refusal.verifying:
      return new PieceFetchError("busy", `parent is busy: ${message}`, retryAfterMs);
    case Refusal.elsewhere:
      return new PieceFetchError("elsewhere", `parent already sent piece ${number} to another peer`);
    default:
      return new PieceFetchError("other", `parent refused piece ${number}: ${message}`);
  }
}
