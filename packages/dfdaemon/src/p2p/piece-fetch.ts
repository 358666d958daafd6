import { Agent, request } from "undici";
import { crc32, errorMessage } from "@lacewing/common";
import type { PieceFailureReason } from "../metrics.js";
import { piecePath } from "../upload/upload-server.js";

/** Keep-alive connections to parents' upload servers, shared by all downloads of a daemon. */
export function createPeerAgent(): Agent {
  return new Agent({ connections: 16, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connectTimeout: 5_000 });
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
  /** `http://ip:port` of the parent's upload server. */
  baseUrl: string;
  taskId: string;
  number: number;
  length: number;
  /** The crc32 the parent announced for the piece over SyncPieces. */
  crc32: number;
  /** Longest wait for the response or for the next bytes of the body. */
  timeoutMs: number;
  signal: AbortSignal;
}

/**
 * Downloads one piece from a parent and checks its length and crc32. Every
 * failure is a PieceFetchError with the reason reported to the scheduler.
 */
export async function fetchPiece(agent: Agent, piece: PieceRequest): Promise<Buffer[]> {
  const signal = piece.signal;
  let response;
  try {
    // The timeouts catch a stalled parent (no headers, or no bytes for that long), not a slow one.
    response = await request(`${piece.baseUrl}${piecePath(piece.taskId, piece.number)}`, {
      dispatcher: agent,
      signal,
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
  // Kept as the chunks that arrived (no 4 MiB copy per piece) with a running crc32.
  const chunks: Buffer[] = [];
  let filled = 0;
  let crc = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (filled + chunk.byteLength > piece.length)
        throw new PieceFetchError("corrupt", `parent sent more than the ${piece.length} bytes of piece ${piece.number}`);
      chunks.push(chunk);
      crc = crc32(chunk, crc);
      filled += chunk.byteLength;
    }
  } catch (err) {
    body.destroy();
    if (err instanceof PieceFetchError) throw err;
    throw failure(err, piece);
  }
  if (filled !== piece.length) throw new PieceFetchError("corrupt", `parent sent ${filled} of the ${piece.length} bytes of piece ${piece.number}`);
  if (crc !== piece.crc32) throw new PieceFetchError("corrupt", `piece ${piece.number} from parent failed its crc32 check`);
  return chunks;
}

function failure(err: unknown, piece: PieceRequest): PieceFetchError {
  if (piece.signal.aborted) return new PieceFetchError("other", "download cancelled");
  const code = (err as { code?: string }).code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT")
    return new PieceFetchError("timeout", `parent stalled for ${piece.timeoutMs} ms on piece ${piece.number}`);
  return new PieceFetchError("connect", `cannot fetch piece ${piece.number} from parent: ${errorMessage(err)}`);
}
