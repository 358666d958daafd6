import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, retry } from "./backoff.js";
import { isAbortError } from "./errors.js";

describe("backoffDelay", () => {
  it("stays within [ceiling/2, ceiling] of an exponential ceiling", () => {
    for (let i = 0; i < 50; i++) {
      const first = backoffDelay(0, { initialMs: 100 });
      assert.ok(first >= 50 && first <= 100, String(first));
      const third = backoffDelay(2, { initialMs: 100, factor: 3 });
      assert.ok(third >= 450 && third <= 900, String(third));
    }
  });

  it("never exceeds maxMs", () => {
    for (let i = 0; i < 50; i++) assert.ok(backoffDelay(30, { initialMs: 100, maxMs: 1_000 }) <= 1_000);
  });
});

describe("retry", () => {
  it("returns the first success without retrying", async () => {
    let calls = 0;
    const value = await retry(async () => ++calls, { attempts: 3, initialMs: 1 });
    assert.equal(value, 1);
    assert.equal(calls, 1);
  });

  it("retries until success, passing the 0-based attempt", async () => {
    const attempts: number[] = [];
    const value = await retry(
      async (attempt) => {
        attempts.push(attempt);
        if (attempt < 2) throw new Error(`fail ${attempt}`);
        return "ok";
      },
      { attempts: 5, initialMs: 1, maxMs: 2 },
    );
    assert.equal(value, "ok");
    assert.deepEqual(attempts, [0, 1, 2]);
  });

  it("stops after the given number of attempts with the last error", async () => {
    let calls = 0;
    const retries: number[] = [];
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { attempts: 3, initialMs: 1, maxMs: 2, onRetry: (_err, attempt) => retries.push(attempt) },
      ),
      /fail 3/,
    );
    assert.equal(calls, 3);
    assert.deepEqual(retries, [0, 1]);
  });

  it("stops at once on a non-retryable error", async () => {
    let calls = 0;
    const fatal = new Error("fatal");
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw fatal;
        },
        { attempts: 10, initialMs: 1, retryable: (err) => err !== fatal },
      ),
      fatal,
    );
    assert.equal(calls, 1);
  });

  it("stops waiting when the signal aborts", async () => {
    const controller = new AbortController();
    let calls = 0;
    const started = Date.now();
    const pending = retry(
      async () => {
        calls++;
        throw new Error("down");
      },
      // A long delay that only the abort can cut short.
      { attempts: 5, initialMs: 60_000, signal: controller.signal, onRetry: () => controller.abort() },
    );
    await assert.rejects(pending, (err: unknown) => isAbortError(err));
    assert.equal(calls, 1);
    assert.ok(Date.now() - started < 5_000);
  });

  it("does not retry once the signal is already aborted", async () => {
    let calls = 0;
    await assert.rejects(
      retry(
        async () => {
          calls++;
          throw new Error("down");
        },
        { attempts: 5, initialMs: 1, signal: AbortSignal.abort() },
      ),
      /down/,
    );
    assert.equal(calls, 1);
  });
});
