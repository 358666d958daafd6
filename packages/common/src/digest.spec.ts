import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { createDigester, createPieceHasher, formatDigest, parseDigest, pieceDigestOf } from "./digest.js";
import { isLacewingError } from "./errors.js";

const HEX64 = "0123456789abcdef".repeat(4);
const HEX128 = HEX64.repeat(2);

function assertBadDigest(text: string): void {
  assert.throws(
    () => parseDigest(text),
    (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_BAD_DIGEST" && err.kind === "invalid_argument",
    text,
  );
}

describe("parseDigest", () => {
  it("parses sha256 and sha512 digests", () => {
    assert.deepEqual(parseDigest(`sha256:${HEX64}`), { algorithm: "sha256", hex: HEX64 });
    assert.deepEqual(parseDigest(`sha512:${HEX128}`), { algorithm: "sha512", hex: HEX128 });
  });

  it("accepts uppercase hex and lowercases it", () => {
    assert.deepEqual(parseDigest(`sha256:${HEX64.toUpperCase()}`), { algorithm: "sha256", hex: HEX64 });
  });

  it("round-trips through formatDigest", () => {
    assert.equal(formatDigest(parseDigest(`sha512:${HEX128}`)), `sha512:${HEX128}`);
  });

  it("rejects wrong lengths for the algorithm", () => {
    assertBadDigest(`sha256:${HEX64.slice(1)}`);
    assertBadDigest(`sha256:${HEX64}0`);
    assertBadDigest(`sha256:${HEX128}`);
    assertBadDigest(`sha512:${HEX64}`);
    assertBadDigest("sha256:");
  });

  it("rejects unknown algorithms, missing prefixes and non-hex", () => {
    assertBadDigest(`md5:${HEX64}`);
    assertBadDigest(`SHA256:${HEX64}`);
    assertBadDigest(HEX64);
    assertBadDigest(`sha256:${"g".repeat(64)}`);
    assertBadDigest("");
  });
});

describe("createDigester", () => {
  it("hashes like node:crypto", () => {
    const digester = createDigester("sha256");
    digester.update("hello ");
    digester.update("world");
    assert.equal(digester.digest("hex"), createHash("sha256").update("hello world").digest("hex"));
  });
});

describe("pieceDigestOf", () => {
  it("is the SHA-256 hex of the bytes, whether they come in one buffer or in chunks", () => {
    assert.equal(pieceDigestOf(Buffer.from("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const data = Buffer.from("x".repeat(10_000));
    assert.equal(pieceDigestOf([data.subarray(0, 777), data.subarray(777)]), pieceDigestOf(data));
    const running = createPieceHasher();
    running.update(data.subarray(0, 3));
    running.update(data.subarray(3));
    assert.equal(running.digest("hex"), pieceDigestOf(data));
    assert.notEqual(pieceDigestOf(data.subarray(1)), pieceDigestOf(data));
  });
});
