import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  FrameDecoder,
  FrameType,
  PREFACE,
  ProtocolError,
  Refusal,
  decodeCancel,
  decodeRefused,
  decodeRequest,
  encodeCancel,
  encodePieceHeader,
  encodeRefused,
  encodeRequest,
  type FrameSink,
} from "./frames.js";

const TASK = "ab".repeat(32);

/** A sink that records everything, copying each piece into a fresh buffer of the announced length. */
function recorder(): FrameSink & { events: string[]; pieces: Buffer[] } {
  const events: string[] = [];
  const pieces: Buffer[] = [];
  let current: Buffer | undefined;
  return {
    events,
    pieces,
    control: (type, payload) => {
      if (type === FrameType.request) events.push(`request ${JSON.stringify(decodeRequest(payload))}`);
      else if (type === FrameType.cancel) events.push(`cancel ${decodeCancel(payload)}`);
      else events.push(`refused ${JSON.stringify(decodeRefused(payload))}`);
    },
    pieceStart: (id, length) => {
      events.push(`piece ${id} ${length}`);
      current = Buffer.alloc(length);
      return current;
    },
    pieceEnd: (id) => {
      events.push(`end ${id}`);
      pieces.push(current!);
    },
  };
}

/** Feeds `bytes` to a decoder in chunks of `size` (1 = byte by byte). */
function feed(decoder: FrameDecoder, bytes: Buffer, size: number): void {
  for (let at = 0; at < bytes.byteLength; at += size) decoder.push(bytes.subarray(at, at + size));
}

describe("piece protocol frames", () => {
  it("round-trips requests, cancels, refusals and pieces however the bytes are split", () => {
    const piece = Buffer.from("the piece's bytes");
    const stream = Buffer.concat([
      encodeRequest({ id: 7, number: 3, taskId: TASK, token: "grant-token" }),
      encodeCancel(7),
      encodeRefused({ id: 8, reason: Refusal.busy, retryAfterMs: 300, message: "upload slots full" }),
      encodePieceHeader(9, piece.byteLength),
      piece,
      encodePieceHeader(10, 0),
    ]);
    for (const size of [1, 3, 7, stream.byteLength]) {
      const sink = recorder();
      feed(new FrameDecoder(sink, { preface: false, maxPiece: 1024 }), stream, size);
      assert.deepEqual(sink.events, [
        `request ${JSON.stringify({ id: 7, number: 3, taskId: TASK, token: "grant-token" })}`,
        "cancel 7",
        `refused ${JSON.stringify({ id: 8, reason: Refusal.busy, retryAfterMs: 300, message: "upload slots full" })}`,
        `piece 9 ${piece.byteLength}`,
        "end 9",
        "piece 10 0",
        "end 10",
      ]);
      assert.deepEqual(sink.pieces[0], piece);
    }
  });

  it("checks the preface on the parent's side", () => {
    const sink = recorder();
    const decoder = new FrameDecoder(sink, { preface: true, maxPiece: 0 });
    feed(decoder, Buffer.concat([PREFACE, encodeCancel(1)]), 1);
    assert.deepEqual(sink.events, ["cancel 1"]);
    assert.throws(() => new FrameDecoder(recorder(), { preface: true, maxPiece: 0 }).push(Buffer.from("GET / HTTP/1.1\r\n")), ProtocolError);
  });

  it("refuses pieces where none are expected, pieces over the limit, oversized control frames and unknown types", () => {
    const decoder = (maxPiece: number): FrameDecoder => new FrameDecoder(recorder(), { preface: false, maxPiece });
    assert.throws(() => decoder(0).push(encodePieceHeader(1, 10)), /no.*expected|where none/);
    assert.throws(() => decoder(1024).push(encodePieceHeader(1, 1025)), /piece frame of/);
    const huge = Buffer.alloc(5);
    huge.writeUInt8(FrameType.request, 0);
    huge.writeUInt32BE(1 << 30, 1);
    assert.throws(() => decoder(1024).push(huge), /control frame of/);
    assert.throws(() => decoder(1024).push(Buffer.from([99, 0, 0, 0, 0])), /unknown frame type 99/);
  });

  it("rejects malformed payloads", () => {
    assert.throws(() => decodeRequest(Buffer.alloc(10)), ProtocolError);
    assert.throws(() => decodeCancel(Buffer.alloc(3)), ProtocolError);
    const refused = encodeRefused({ id: 1, reason: Refusal.notFound, retryAfterMs: 0, message: "" }).subarray(5);
    refused.writeUInt8(200, 4);
    assert.throws(() => decodeRefused(refused), /unknown refusal reason 200/);
    assert.throws(() => encodeRequest({ id: 1, number: 0, taskId: "not-hex", token: "t" }), RangeError);
    assert.throws(() => encodeRequest({ id: 1, number: 0, taskId: TASK, token: "" }), RangeError);
    assert.throws(() => encodeRequest({ id: 1, number: 0, taskId: TASK, token: "x".repeat(129) }), RangeError);
  });

  it("skips the rest of a discarded piece and reads the next frame", () => {
    const written: Buffer[] = [];
    const target = Buffer.alloc(8);
    const ends: number[] = [];
    const decoder = new FrameDecoder(
      {
        control: () => undefined,
        pieceStart: () => target,
        pieceEnd: (id) => {
          ends.push(id);
          written.push(Buffer.from(target));
        },
      },
      { preface: false, maxPiece: 64 },
    );
    decoder.push(Buffer.concat([encodePieceHeader(1, 8), Buffer.from("abcd")]));
    decoder.discardPiece();
    target.fill(0);
    decoder.push(Buffer.from("efgh"));
    assert.deepEqual(target, Buffer.alloc(8), "nothing is written into a discarded piece's buffer");
    decoder.push(Buffer.concat([encodePieceHeader(2, 8), Buffer.from("12345678")]));
    assert.deepEqual(ends, [1, 2]);
    assert.equal(written[1]!.toString(), "12345678");
    assert.ok(decoder.idle);
  });
});
