import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { crc32, createDigester, formatDigest, parseDigest } from "./digest.js";
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

describe("crc32", () => {
  it("matches the zlib check value", () => {
    assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
  });

  it("continued over chunks equals one shot", () => {
    const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31) & 0xff));
    const oneShot = crc32(data);
    let running = 0;
    for (let offset = 0; offset < data.length; offset += 777) running = crc32(data.subarray(offset, offset + 777), running);
    assert.equal(running, oneShot);
    assert.notEqual(crc32(data.subarray(1)), oneShot);
  });
});
