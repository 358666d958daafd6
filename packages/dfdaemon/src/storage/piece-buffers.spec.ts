import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { PieceBuffers } from "./piece-buffers.js";

const MiB = 1024 * 1024;

describe("PieceBuffers", () => {
  it("leases buffers of the asked length and reuses them once released", async () => {
    const pool = new PieceBuffers(8 * MiB);
    const first = await pool.acquire(4 * MiB);
    assert.equal(first.bytes.byteLength, 4 * MiB);
    const underlying = first.bytes.buffer;
    first.release();
    first.release(); // Twice is harmless.
    const again = await pool.acquire(4 * MiB - 10);
    assert.equal(again.bytes.byteLength, 4 * MiB - 10, "a short last piece gets its own length");
    assert.equal(again.bytes.buffer, underlying, "the same memory, not a new allocation");
    assert.equal(pool.heldBytes, 4 * MiB);
  });

  it("makes callers past the budget wait, in order, until memory comes back", async () => {
    const pool = new PieceBuffers(8 * MiB);
    const a = await pool.acquire(4 * MiB);
    const b = await pool.acquire(4 * MiB);
    const order: string[] = [];
    const c = pool.acquire(4 * MiB).then((lease) => (order.push("c"), lease));
    const d = pool.acquire(4 * MiB).then((lease) => (order.push("d"), lease));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], "nobody gets memory past the budget");
    assert.equal(pool.waiting, 2);
    a.release();
    (await c).release();
    b.release();
    await d;
    assert.deepEqual(order, ["c", "d"]);
    assert.ok(pool.heldBytes <= 8 * MiB);
  });

  it("gives free buffers of another size back before anyone waits, and always grants one lease however large", async () => {
    const pool = new PieceBuffers(8 * MiB);
    const small = await pool.acquire(MiB);
    small.release();
    const big = await pool.acquire(8 * MiB);
    assert.equal(pool.heldBytes, 8 * MiB, "the free 1 MiB buffer was dropped to make room");
    big.release();
    const huge = await pool.acquire(64 * MiB);
    assert.equal(huge.bytes.byteLength, 64 * MiB, "a piece larger than the budget is not stuck when nothing else is leased");
    huge.release();
  });

  it("a waiter whose download is cancelled leaves the queue with LW_ERR_CANCELLED", async () => {
    const pool = new PieceBuffers(4 * MiB);
    const held = await pool.acquire(4 * MiB);
    const abort = new AbortController();
    const waiting = pool.acquire(4 * MiB, abort.signal);
    abort.abort();
    await assert.rejects(waiting, (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_CANCELLED");
    assert.equal(pool.waiting, 0);
    await assert.rejects(pool.acquire(MiB, abort.signal), (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_CANCELLED");
    held.release();
    (await pool.acquire(4 * MiB)).release();
  });
});
