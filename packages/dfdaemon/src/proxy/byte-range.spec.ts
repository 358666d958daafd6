import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseRange } from "./byte-range.js";

describe("parseRange", () => {
  it("honours one bytes=a-b range, clamping its end to the body", () => {
    assert.deepEqual(parseRange("bytes=10-19", 100), { kind: "partial", range: { start: 10, end: 19 } });
    assert.deepEqual(parseRange("bytes=90-500", 100), { kind: "partial", range: { start: 90, end: 99 } });
  });

  it("honours open-ended and suffix ranges", () => {
    assert.deepEqual(parseRange("bytes=40-", 100), { kind: "partial", range: { start: 40, end: 99 } });
    assert.deepEqual(parseRange("bytes=-10", 100), { kind: "partial", range: { start: 90, end: 99 } });
    assert.deepEqual(parseRange("bytes=-1000", 100), { kind: "partial", range: { start: 0, end: 99 } });
  });

  it("says unsatisfiable for a start past the end or an empty suffix", () => {
    assert.deepEqual(parseRange("bytes=100-", 100), { kind: "unsatisfiable" });
    assert.deepEqual(parseRange("bytes=-0", 100), { kind: "unsatisfiable" });
  });

  it("serves the whole body for no header, several ranges, other units or nonsense", () => {
    for (const header of [undefined, "bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=-", "garbage"])
      assert.deepEqual(parseRange(header, 100), { kind: "full" });
  });
});
