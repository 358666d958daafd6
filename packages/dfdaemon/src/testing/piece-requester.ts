import { once } from "node:events";
import { connect, type Socket } from "node:net";
import { FrameDecoder, FrameType, PREFACE, Refusal, decodeRefused, encodeRequest, type RefusalReason } from "../transfer/frames.js";

/** How a parent answered one request: the bytes, or why not. */
export type PieceAnswer = { piece: Buffer } | { refused: RefusalName; message: string };

export type RefusalName = keyof typeof Refusal;

const NAMES = new Map<RefusalReason, RefusalName>(Object.entries(Refusal).map(([name, code]) => [code, name as RefusalName]));

/**
 * A bare client of the piece protocol (transfer/frames.ts) on one plain TCP
 * connection, for tests and tools: it sends requests and reports answers as
 * they come, trusting nothing and checking nothing (the daemon's own client
 * is p2p/piece-client.ts). `pause` stops reading, as a child that never
 * reads would.
 */
export class PieceRequester {
  readonly #socket: Socket;
  readonly #answers: Array<(answer: PieceAnswer) => void> = [];
  #nextId = 1;
  #piece: Buffer | undefined;
  readonly #starts: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    const decoder = new FrameDecoder(
      {
        control: (type, payload) => {
          if (type !== FrameType.refused) throw new Error(`unexpected frame type ${type}`);
          const refused = decodeRefused(payload);
          this.#answers.shift()?.({ refused: NAMES.get(refused.reason) ?? "badRequest", message: refused.message });
        },
        pieceStart: (_id, length) => {
          this.#starts.shift()?.();
          return (this.#piece = Buffer.alloc(length));
        },
        pieceEnd: () => this.#answers.shift()?.({ piece: this.#piece! }),
      },
      { preface: false, maxPiece: 1 << 30 },
    );
    socket.on("data", (chunk: Buffer) => decoder.push(chunk));
    socket.on("error", () => undefined);
  }

  static async connect(port: number, host = "127.0.0.1"): Promise<PieceRequester> {
    const socket = connect({ port, host });
    await once(socket, "connect");
    socket.write(PREFACE);
    return new PieceRequester(socket);
  }

  /** Sends a request; resolves with its answer (never, once paused or closed, unless it already came). */
  request(taskId: string, number: number, token: string): Promise<PieceAnswer> {
    const id = this.#nextId++;
    this.#socket.write(encodeRequest({ id, taskId, number, token }));
    return new Promise((resolve) => this.#answers.push(resolve));
  }

  /** Resolves when the next piece's bytes begin to arrive: the parent admitted a request and holds an upload slot for it. */
  pieceStarted(): Promise<void> {
    return new Promise((resolve) => this.#starts.push(resolve));
  }

  /** Stops reading: the parent's writes back up. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** One request on a fresh connection. */
export async function requestPiece(port: number, taskId: string, number: number, token: string): Promise<PieceAnswer> {
  const requester = await PieceRequester.connect(port);
  try {
    return await requester.request(taskId, number, token);
  } finally {
    requester.close();
  }
}
