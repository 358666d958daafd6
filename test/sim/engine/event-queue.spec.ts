import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventQueue } from "./event-queue.js";

describe("EventQueue", () => {
  it("runs events in time order and advances the clock to each", () => {
    const events = new EventQueue();
    const seen: Array<[string, number]> = [];
    events.at(30, () => seen.push(["c", events.now]));
    events.at(10, () => seen.push(["a", events.now]));
    events.at(20, () => seen.push(["b", events.now]));
    events.runUntilIdle();
    assert.deepEqual(seen, [
      ["a", 10],
      ["b", 20],
      ["c", 30],
    ]);
    assert.equal(events.processed, 3);
  });

  it("runs events of the same instant in the order they were scheduled", () => {
    const events = new EventQueue();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) events.at(5, () => seen.push(i));
    events.runUntilIdle();
    assert.deepEqual(
      seen,
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it("never runs an event scheduled in the past before now", () => {
    const events = new EventQueue();
    let at = -1;
    events.at(100, () => events.at(40, () => (at = events.now)));
    events.runUntilIdle();
    assert.equal(at, 100);
  });

  it("stops before an event later than the limit and keeps it", () => {
    const events = new EventQueue();
    let ran = false;
    events.after(10, () => undefined);
    events.after(500, () => (ran = true));
    events.runUntilIdle(100);
    assert.equal(ran, false);
    assert.equal(events.size, 1);
    assert.equal(events.peekTime(), 500);
  });

  it("keeps heap order over many random insertions", () => {
    const events = new EventQueue();
    const times: number[] = [];
    let seed = 7;
    for (let i = 0; i < 2_000; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const time = seed % 10_000;
      events.at(time, () => times.push(events.now));
    }
    events.runUntilIdle();
    assert.equal(times.length, 2_000);
    for (let i = 1; i < times.length; i++) assert.ok(times[i - 1]! <= times[i]!, `event ${i} ran out of order`);
  });

  it("refuses a time that is not finite", () => {
    assert.throws(() => new EventQueue().at(Number.NaN, () => undefined), RangeError);
  });
});
