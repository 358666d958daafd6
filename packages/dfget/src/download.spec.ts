import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_TIMER_MS } from "@lacewing/common";
import { clientDeadlineMs } from "./download.js";

describe("clientDeadlineMs", () => {
  it("gives the daemon a little longer than its own deadline", () => {
    assert.equal(clientDeadlineMs(10_000), 11_000);
    assert.equal(clientDeadlineMs(3_600_000), 3_605_000);
  });

  it("never sets a timer beyond the limit, where it would fire at once", () => {
    assert.equal(clientDeadlineMs(MAX_TIMER_MS), MAX_TIMER_MS);
    assert.equal(clientDeadlineMs(MAX_TIMER_MS - 1_000), MAX_TIMER_MS);
  });
});
