import { Agent, request } from "undici";
import { checkServerRole } from "@lacewing/api";
import { MEMBER_ROLES, createPieceHasher, errorMessage, type Security } from "@lacewing/common";
import type { PieceFailureReason } from "../metrics.js";
import { piecePath } from "../upload/upload-server.js";

/**
 * Keep-alive connections to parents' upload servers, shared by all
 * downloads of a daemon. A parent whose download port speaks TLS must
 * present a cluster member's certificate, and gets this daemon's.
 */
export function createPeerAgent(security: Security): Agent {
  const tls =
    security.mode === "tls"
      ? {
          ca: security.material.ca,
          cert: security.material.cert,
          key: security.material.key,
          servername: "lacewing",
          checkServerIdentity: (_host: string, cert: Parameters<typeof checkServerRole>[0]) => checkServerRole(cert, MEMBER_ROLES),
        }
      : {};
  return new Agent({ connections: 16, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connectTimeout: 5_000, connect: tls });
}

/** A piece a parent could not deliver, and why. */
export class PieceFetchError extends Error {
  constructor(
    readonly reason: PieceFailureReason,
    message: string,
  ) {
    super(message);
    this.name = "PieceFetchError";
  }
}

export interface PieceRequest {
  /** `http(s)://ip:port` of the parent's upload server. */
  baseUrl: string;
  taskId: string;
  number: number;
  length: number;
  /** The piece's SHA-256 (hex) as the scheduler gave it: the bytes must match it, whatever the parent says. */
  sha256: string;
  /** The parent's upload grant for this task, from SyncPieces. */
  token: string;
  /** Longest wait for the response or for the next bytes of the body. */
  timeoutMs: number;
  signal: AbortSignal;
}

/**
 * Downloads one piece from a parent and checks its length and SHA-256.
 * Every failure is a PieceFetchError with the reason reported to the
 * scheduler; a digest that does not match is "corrupt".
 */
export async function fetchPiece(agent: Agent, piece: PieceRequest): Promise<Buffer[]> {
  const signal = piece.signal;
  let response;
  try {
    // The timeouts catch a stalled parent (no headers, or no bytes for that long), not a slow one.
    response = await request(`${piece.baseUrl}${piecePath(piece.taskId, piece.number)}`, {
      dispatcher: agent,
      signal,
      headers: { authorization: `Bearer ${piece.token}` },
      headersTimeout: piece.timeoutMs,
      bodyTimeout: piece.timeoutMs,
    });
  } catch (err) {
    throw failure(err, piece);
  }
  const { statusCode, body } = response;
  if (statusCode !== 200) {
    await body.dump().catch(() => undefined);
    if (statusCode === 404) throw new PieceFetchError("not_found", `parent no longer holds piece ${piece.number}`);
    if (statusCode === 503 && response.headers["x-lacewing-elsewhere"] !== undefined)
      throw new PieceFetchError("elsewhere", `parent already sent piece ${piece.number} to another peer`);
    if (statusCode === 503) throw new PieceFetchError("busy", `parent's upload slots are full`);
    throw new PieceFetchError("other", `parent answered ${statusCode} for piece ${piece.number}`);
  }
  // Kept as the chunks that arrived (no 4 MiB copy per piece), hashed as they come.
  const chunks: Buffer[] = [];
  const hash = createPieceHasher();
  let filled = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (filled + chunk.byteLength > piece.length)
        throw new PieceFetchError("corrupt", `parent sent more than the ${piece.length} bytes of piece ${piece.number}`);
      chunks.push(chunk);
      hash.update(chunk);
      filled += chunk.byteLength;
    }
  } catch (err) {
    body.destroy();
    if (err instanceof PieceFetchError) throw err;
    throw failure(err, piece);
  }
  if (filled !== piece.length) throw new PieceFetchError("corrupt", `parent sent ${filled} of the ${piece.length} bytes of piece ${piece.number}`);
  if (hash.digest("hex") !== piece.sha256) throw new PieceFetchError("corrupt", `piece ${piece.number} from parent does not match the scheduler's SHA-256`);
  return chunks;
}

function failure(err: unknown, piece: PieceRequest): PieceFetchError {
  if (piece.signal.aborted) return new PieceFetchError("other", "download cancelled");
  const code = (err as { code?: string }).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT")
    return new PieceFetchError("timeout", `parent stalled for ${piece.timeoutMs} ms on piece ${piece.number}`);
  return new PieceFetchError("connect", `cannot fetch piece ${piece.number} from parent: ${errorMessage(err)}`);
}
