import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StoredTask } from "../storage/stored-task.js";
import { SEND_TIME_MULTIPLE, SuperSeed } from "./super-seed.js";

const task = { finished: false } as unknown as StoredTask;

describe("SuperSeed", () => {
  it("sends a piece once, refuses it while the first send runs and for the window after, then serves it again", () => {
    const seed = new SuperSeed(3_000);
    assert.deepEqual(seed.admit(task, 7, 0), { ok: true, first: true });
    assert.equal(seed.admit(task, 7, 400).ok, false, "first send still in flight");
    assert.deepEqual(seed.admit(task, 8, 400), { ok: true, first: true }, "other pieces are not affected");
    seed.done(task, 7, true, 500);
    assert.equal(seed.admit(task, 7, 3_499).ok, false, "inside the window after the first send");
    assert.deepEqual(seed.admit(task, 7, 3_500), { ok: true, first: false });
  });

  it("holds a piece whose first send was slow for four send-times, so its receiver can pass it on at that speed", () => {
    const seed = new SuperSeed(3_000);
    seed.admit(task, 2, 10_000);
    seed.done(task, 2, true, 12_000);
    assert.equal(SEND_TIME_MULTIPLE, 4);
    assert.equal(seed.admit(task, 2, 12_000 + 7_999).ok, false, "a 2 s send holds the piece for 8 s, past the 3 s window");
    assert.deepEqual(seed.admit(task, 2, 12_000 + 8_000), { ok: true, first: false });
  });

  it("frees a piece whose first send failed, and one whose first send hangs", () => {
    const seed = new SuperSeed(3_000);
    seed.admit(task, 1, 0);
    seed.done(task, 1, false, 100);
    assert.deepEqual(seed.admit(task, 1, 200), { ok: true, first: true }, "the failed send does not count");
    assert.equal(seed.admit(task, 1, 29_000).ok, false);
    assert.deepEqual(seed.admit(task, 1, 30_200), { ok: true, first: true }, "a send stuck for 30 s is presumed lost");
  });

  it("serves freely once the seed holds the whole task and every piece went out once", () => {
    const whole = { finished: true, totalPieces: 2 } as unknown as StoredTask;
    const seed = new SuperSeed(3_000);
    seed.admit(whole, 0, 0);
    seed.done(whole, 0, true, 10);
    assert.equal(seed.admit(whole, 0, 20).ok, false, "piece 1 has not gone out yet");
    seed.admit(whole, 1, 30);
    seed.done(whole, 1, true, 40);
    assert.deepEqual(seed.admit(whole, 0, 50), { ok: true, first: false });
  });
});
