import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StoredTask } from "../storage/stored-task.js";
import { SuperSeed } from "./super-seed.js";

const task = { meta: { finished: false } } as unknown as StoredTask;

describe("SuperSeed", () => {
  it("sends a piece once, refuses it while the first send runs and for the window after, then serves it again", () => {
    const seed = new SuperSeed(3_000);
    assert.deepEqual(seed.admit(task, 7, 0), { ok: true, first: true });
    assert.equal(seed.admit(task, 7, 5_000).ok, false, "first send still in flight");
    assert.deepEqual(seed.admit(task, 8, 5_000), { ok: true, first: true }, "other pieces are not affected");
    seed.done(task, 7, true, 6_000);
    assert.equal(seed.admit(task, 7, 8_999).ok, false, "inside the window after the first send");
    assert.deepEqual(seed.admit(task, 7, 9_000), { ok: true, first: false });
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
    const whole = { meta: { finished: true }, totalPieces: 2 } as unknown as StoredTask;
    const seed = new SuperSeed(3_000);
    seed.admit(whole, 0, 0);
    seed.done(whole, 0, true, 10);
    assert.equal(seed.admit(whole, 0, 20).ok, false, "piece 1 has not gone out yet");
    seed.admit(whole, 1, 30);
    seed.done(whole, 1, true, 40);
    assert.deepEqual(seed.admit(whole, 0, 50), { ok: true, first: false });
  });
});
