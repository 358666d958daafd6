import type { Socket } from "node:net";

/**
 * The piece transfer protocol between a child and a parent's download
 * port: one long-lived TCP connection (TLS with --upload-tls) per parent
 * host, carrying any number of pieces of any number of tasks, requests
 * pipelined. The child opens with the 4-byte preface `LWP1`; then both
 * sides send frames:
 *
 *     type u8 | size u32 (big-endian) | payload (size bytes)
 *
 * child → parent
 *   REQUEST  id u32 | piece number u32 | task id (32 bytes) | upload grant (ASCII, 1–128 bytes)
 *   CANCEL   id u32 — drop a request the parent has not started sending
 *
 * parent → child
 *   PIECE    id u32 | the piece's bytes
 *   REFUSED  id u32 | reason u8 | retry after ms u32 | message (UTF-8)
 *
 * The parent answers every request exactly once, in the order it received
 * them, so a child knows which request a PIECE answers and how long it
 * must be before reading its bytes; anything else is a protocol error and
 * ends the connection. Nothing here trusts a length it did not ask for.
 */

export const PREFACE = Buffer.from("LWP1", "latin1");

export const FrameType = {
  request: 1,
  cancel: 2,
  piece: 16,
  refused: 17,
} as const;

/** Why a parent did not send a piece; the child decides what each costs the parent. */
export const Refusal = {
  /** No upload grant for the task on this request. */
  unauthorized: 1,
  notFound: 2,
  /** Upload slots full: ask another parent, or this one later. */
  busy: 3,
  /** A super-seeding seed sent this piece to another child: get it there. */
  elsewhere: 4,
  /** The task's data is being checked again after a change on disk. */
  verifying: 5,
  /** The child cancelled the request before it was sent. */
  cancelled: 6,
  badRequest: 7,
} as const;
export type RefusalReason = (typeof Refusal)[keyof typeof Refusal];

const HEADER = 5;
/** Header of a PIECE frame with its request id: what a child must read before the piece's bytes. */
export const PIECE_HEADER = HEADER + 4;
const TASK_ID_BYTES = 32;
const MAX_TOKEN = 128;
const MAX_MESSAGE = 512;
/** Largest control frame either side accepts: a refusal with the longest message (a request is shorter). */
const MAX_CONTROL_PAYLOAD = 9 + MAX_MESSAGE;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

export interface RequestFrame {
  id: number;
  number: number;
  /** 64 hex digits. */
  taskId: string;
  token: string;
}

export interface RefusedFrame {
  id: number;
  reason: RefusalReason;
  retryAfterMs: number;
  message: string;
}

function frame(type: number, payload: number): Buffer {
  const bytes = Buffer.allocUnsafe(HEADER + payload);
  bytes.writeUInt8(type, 0);
  bytes.writeUInt32BE(payload, 1);
  return bytes;
}

export function encodeRequest(request: RequestFrame): Buffer {
  const token = Buffer.from(request.token, "latin1");
  if (token.byteLength === 0 || token.byteLength > MAX_TOKEN) throw new RangeError(`an upload grant is 1 to ${MAX_TOKEN} bytes`);
  if (!/^[0-9a-f]{64}$/.test(request.taskId)) throw new RangeError(`task id ${request.taskId} is not 64 hex digits`);
  const bytes = frame(FrameType.request, 8 + TASK_ID_BYTES + token.byteLength);
  bytes.writeUInt32BE(request.id, HEADER);
  bytes.writeUInt32BE(request.number, HEADER + 4);
  bytes.write(request.taskId, HEADER + 8, TASK_ID_BYTES, "hex");
  token.copy(bytes, HEADER + 8 + TASK_ID_BYTES);
  return bytes;
}

export function decodeRequest(payload: Buffer): RequestFrame {
  if (payload.byteLength < 8 + TASK_ID_BYTES + 1 || payload.byteLength > 8 + TASK_ID_BYTES + MAX_TOKEN)
    throw new ProtocolError(`a request frame of ${payload.byteLength} bytes`);
  return {
    id: payload.readUInt32BE(0),
    number: payload.readUInt32BE(4),
    taskId: payload.toString("hex", 8, 8 + TASK_ID_BYTES),
    token: payload.toString("latin1", 8 + TASK_ID_BYTES),
  };
}

export function encodeCancel(id: number): Buffer {
  const bytes = frame(FrameType.cancel, 4);
  bytes.writeUInt32BE(id, HEADER);
  return bytes;
}

export function decodeCancel(payload: Buffer): number {
  if (payload.byteLength !== 4) throw new ProtocolError(`a cancel frame has 4 bytes, not ${payload.byteLength}`);
  return payload.readUInt32BE(0);
}

/** The frame header and request id that go before a piece's bytes. */
export function encodePieceHeader(id: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(PIECE_HEADER);
  bytes.writeUInt8(FrameType.piece, 0);
  bytes.writeUInt32BE(length + 4, 1);
  bytes.writeUInt32BE(id, HEADER);
  return bytes;
}

export function encodeRefused(refused: RefusedFrame): Buffer {
  const message = Buffer.from(refused.message.slice(0, MAX_MESSAGE), "utf8").subarray(0, MAX_MESSAGE);
  const bytes = frame(FrameType.refused, 9 + message.byteLength);
  bytes.writeUInt32BE(refused.id, HEADER);
  bytes.writeUInt8(refused.reason, HEADER + 4);
  bytes.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(refused.retryAfterMs))), HEADER + 5);
  message.copy(bytes, HEADER + 9);
  return bytes;
}

export function decodeRefused(payload: Buffer): RefusedFrame {
  if (payload.byteLength < 9 || payload.byteLength > 9 + MAX_MESSAGE) throw new ProtocolError(`a refusal frame of ${payload.byteLength} bytes`);
  const reason = payload.readUInt8(4);
  if (!Object.values(Refusal).includes(reason as RefusalReason)) throw new ProtocolError(`unknown refusal reason ${reason}`);
  return { id: payload.readUInt32BE(0), reason: reason as RefusalReason, retryAfterMs: payload.readUInt32BE(5), message: payload.toString("utf8", 9) };
}

/** Where a decoder delivers what it read. A handler may throw (a ProtocolError, say): the caller then ends the connection. */
export interface FrameSink {
  /** A whole control frame (REQUEST, CANCEL, REFUSED). */
  control(type: number, payload: Buffer): void;
  /** A PIECE frame of `length` bytes begins: where to copy them (exactly `length` long), or undefined to skip them. */
  pieceStart(id: number, length: number): Buffer | undefined;
  /** The last byte of the piece has been delivered. */
  pieceEnd(id: number): void;
}

export interface DecoderLimits {
  /** Expect the preface before the first frame (the parent's side). */
  preface: boolean;
  /** Largest piece accepted; 0 when PIECE frames are not allowed at all. */
  maxPiece: number;
}

const CONTROL_TYPES: ReadonlySet<number> = new Set([FrameType.request, FrameType.cancel, FrameType.refused]);

/**
 * Reads frames from a byte stream in whatever chunks it arrives, copying a
 * piece's bytes straight into the buffer its sink names. Throws a
 * ProtocolError on anything outside the protocol or the limits.
 */
export class FrameDecoder {
  readonly #sink: FrameSink;
  readonly #limits: DecoderLimits;
  #prefaceLeft: number;
  readonly #head = Buffer.allocUnsafe(PIECE_HEADER);
  #headFilled = 0;
  /** Control payload being collected, or the piece body being copied. */
  #body: Buffer | undefined;
  #bodyLeft = 0;
  #bodyFilled = 0;
  #mode: "head" | "control" | "piece" = "head";
  #type = 0;
  #pieceId = 0;

  constructor(sink: FrameSink, limits: DecoderLimits) {
    this.#sink = sink;
    this.#limits = limits;
    this.#prefaceLeft = limits.preface ? PREFACE.byteLength : 0;
  }

  push(bytes: Uint8Array, length = bytes.byteLength): void {
    let at = 0;
    while (this.#prefaceLeft > 0 && at < length) {
      if (bytes[at] !== PREFACE[PREFACE.byteLength - this.#prefaceLeft]) throw new ProtocolError("the connection did not start with the LWP1 preface");
      this.#prefaceLeft--;
      at++;
    }
    while (at < length) {
      if (this.#mode === "head") at = this.#readHead(bytes, at, length);
      else at = this.#readBody(bytes, at, length);
    }
  }

  /** The rest of the piece being read is skipped: its buffer is no longer written to from now on. */
  discardPiece(): void {
    if (this.#mode === "piece") this.#body = undefined;
  }

  /** True between frames: nothing half-read. */
  get idle(): boolean {
    return this.#mode === "head" && this.#headFilled === 0;
  }

  #readHead(bytes: Uint8Array, at: number, length: number): number {
    const want = this.#headFilled < HEADER || this.#head[0] !== FrameType.piece ? HEADER : PIECE_HEADER;
    const take = Math.min(want - this.#headFilled, length - at);
    this.#head.set(bytes.subarray(at, at + take), this.#headFilled);
    this.#headFilled += take;
    at += take;
    if (this.#headFilled < HEADER) return at;
    const type = this.#head[0]!;
    const size = this.#head.readUInt32BE(1);
    if (type === FrameType.piece) {
      if (this.#limits.maxPiece === 0) throw new ProtocolError("a piece frame where none is expected");
      if (this.#headFilled < PIECE_HEADER) return at;
      const pieceLength = size - 4;
      if (size < 4 || pieceLength > this.#limits.maxPiece) throw new ProtocolError(`a piece frame of ${size} bytes`);
      this.#pieceId = this.#head.readUInt32BE(HEADER);
      this.#headFilled = 0;
      this.#body = this.#sink.pieceStart(this.#pieceId, pieceLength);
      if (this.#body !== undefined && this.#body.byteLength !== pieceLength) throw new ProtocolError("piece buffer of the wrong length");
      this.#bodyFilled = 0;
      this.#bodyLeft = pieceLength;
      this.#mode = "piece";
      if (pieceLength === 0) this.#endPiece();
      return at;
    }
    if (!CONTROL_TYPES.has(type)) throw new ProtocolError(`unknown frame type ${type}`);
    if (size > MAX_CONTROL_PAYLOAD) throw new ProtocolError(`a control frame of ${size} bytes`);
    this.#type = type;
    this.#headFilled = 0;
    this.#body = Buffer.allocUnsafe(size);
    this.#bodyFilled = 0;
    this.#bodyLeft = size;
    this.#mode = "control";
    if (size === 0) this.#endControl();
    return at;
  }

  #readBody(bytes: Uint8Array, at: number, length: number): number {
    const take = Math.min(this.#bodyLeft, length - at);
    this.#body?.set(bytes.subarray(at, at + take), this.#bodyFilled);
    this.#bodyFilled += take;
    this.#bodyLeft -= take;
    at += take;
    if (this.#bodyLeft === 0) {
      if (this.#mode === "piece") this.#endPiece();
      else this.#endControl();
    }
    return at;
  }

  #endPiece(): void {
    this.#mode = "head";
    this.#body = undefined;
    this.#sink.pieceEnd(this.#pieceId);
  }

  #endControl(): void {
    const payload = this.#body!;
    this.#mode = "head";
    this.#body = undefined;
    this.#sink.control(this.#type, payload);
  }
}

/**
 * Reads a child's frames off `socket` on the parent's side: the preface,
 * then control frames only, each handed to `control`. A frame outside the
 * protocol (or a handler that throws) ends the connection, after `broken`
 * heard why.
 */
export function readChildFrames(socket: Socket, control: FrameSink["control"], broken: (err: unknown) => void = () => undefined): void {
  const decoder = new FrameDecoder({ control, pieceStart: () => undefined, pieceEnd: () => undefined }, { preface: true, maxPiece: 0 });
  socket.on("data", (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      broken(err);
      socket.destroy();
    }
  });
}
