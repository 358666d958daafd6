import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AsyncQueue } from "./async-queue.js";

async function collect<T>(queue: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of queue) items.push(item);
  return items;
}

describe("AsyncQueue", () => {
  it("delivers items pushed before the consumer starts", async () => {
    const queue = new AsyncQueue<number>();
    queue.push(1);
    queue.push(2);
    queue.end();
    assert.deepEqual(await collect(queue), [1, 2]);
  });

  it("delivers items pushed while the consumer waits", async () => {
    const queue = new AsyncQueue<string>();
    const iterator = queue[Symbol.asyncIterator]();
    const first = iterator.next();
    queue.push("a");
    assert.deepEqual(await first, { value: "a", done: false });
    const second = iterator.next();
    queue.push("b");
    queue.push("c");
    assert.deepEqual(await second, { value: "b", done: false });
    assert.deepEqual(await iterator.next(), { value: "c", done: false });
    queue.end();
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it("keeps order across pushes before and after the consumer waits", async () => {
    const queue = new AsyncQueue<number>();
    queue.push(1);
    const result = collect(queue);
    await Promise.resolve();
    queue.push(2);
    queue.push(3);
    queue.end();
    assert.deepEqual(await result, [1, 2, 3]);
  });

  it("end lets the consumer drain queued items and then finishes", async () => {
    const queue = new AsyncQueue<number>();
    queue.push(1);
    queue.push(2);
    queue.end();
    assert.equal(queue.ended, true);
    queue.push(3);
    assert.deepEqual(await collect(queue), [1, 2]);
  });

  it("end releases a waiting consumer", async () => {
    const queue = new AsyncQueue<number>();
    const result = collect(queue);
    await Promise.resolve();
    queue.end();
    assert.deepEqual(await result, []);
  });

  it("fail throws to the consumer after the queued items", async () => {
    const queue = new AsyncQueue<number>();
    const boom = new Error("boom");
    queue.push(1);
    queue.push(2);
    queue.fail(boom);
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const item of queue) seen.push(item);
    }, boom);
    assert.deepEqual(seen, [1, 2]);
  });

  it("fail rejects a waiting consumer", async () => {
    const queue = new AsyncQueue<number>();
    const boom = new Error("boom");
    const iterator = queue[Symbol.asyncIterator]();
    const pending = iterator.next();
    queue.fail(boom);
    await assert.rejects(pending, boom);
  });

  it("carries falsy items such as 0 and empty strings", async () => {
    const queue = new AsyncQueue<number | string>();
    queue.push(0);
    queue.push("");
    queue.end();
    assert.deepEqual(await collect(queue), [0, ""]);
  });
});
