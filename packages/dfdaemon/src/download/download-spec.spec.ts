import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DownloadSchema, create } from "@lacewing/api";
import { MAX_TIMER_MS, isLacewingError } from "@lacewing/common";
import { downloadSpecOf } from "./download-spec.js";

describe("downloadSpecOf", () => {
  it("refuses a timeout beyond the Node timer limit, which would expire the download at once", () => {
    const tooLong = create(DownloadSchema, { url: "https://h/f", timeoutMs: BigInt(MAX_TIMER_MS) + 1n });
    assert.throws(
      () => downloadSpecOf(tooLong),
      (err: unknown) => isLacewingError(err) && err.kind === "invalid_argument" && /timeout_ms/.test(err.message),
    );
    assert.throws(() => downloadSpecOf(create(DownloadSchema, { url: "https://h/f", timeoutMs: 2n ** 64n - 1n })), /timeout_ms/);
  });

  it("keeps a timeout up to the limit, and 0 for none", () => {
    assert.equal(downloadSpecOf(create(DownloadSchema, { url: "https://h/f", timeoutMs: BigInt(MAX_TIMER_MS) })).timeoutMs, MAX_TIMER_MS);
    assert.equal(downloadSpecOf(create(DownloadSchema, { url: "https://h/f" })).timeoutMs, 0);
  });
});
