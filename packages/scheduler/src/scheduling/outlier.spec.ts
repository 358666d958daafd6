import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { taskWorld } from "../testing/fixtures.js";
import { MIN_COST_SAMPLES, recordPieceCost } from "./outlier.js";

const MiB = 1024 * 1024;

function report(task: ReturnType<typeof taskWorld>["task"], parentId: string, costMs: number, times = MIN_COST_SAMPLES): void {
  for (let i = 0; i < times; i++) recordPieceCost(task, parentId, 4 * MiB, costMs);
}

describe("piece cost outliers", () => {
  it("marks a parent more than 3x slower per byte than the others' median", () => {
    const { task } = taskWorld();
    report(task, "a", 100);
    report(task, "b", 120);
    report(task, "slow", 1_000);
    assert.deepEqual([...task.badParents], ["slow"]);
  });

  it("does not judge a parent before it has enough samples", () => {
    const { task } = taskWorld();
    report(task, "a", 100);
    report(task, "slow", 1_000, MIN_COST_SAMPLES - 1);
    assert.equal(task.badParents.size, 0);
    recordPieceCost(task, "slow", 4 * MiB, 1_000);
    assert.deepEqual([...task.badParents], ["slow"]);
  });

  it("ignores millisecond jitter on a fast network", () => {
    const { task } = taskWorld();
    report(task, "a", 1);
    report(task, "b", 9);
    assert.equal(task.badParents.size, 0);
  });

  it("lifts the mark once the parent's mean cost recovers", () => {
    const { task } = taskWorld();
    report(task, "a", 100);
    report(task, "slow", 1_000);
    assert.ok(task.badParents.has("slow"));
    report(task, "slow", 100, 30);
    assert.equal(task.badParents.size, 0);
  });
});
