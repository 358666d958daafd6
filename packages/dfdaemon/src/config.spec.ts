import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isLacewingError } from "@lacewing/common";
import { loadDfdaemonConfig } from "./config.js";

describe("dfdaemon config: cache lifecycle keys", () => {
  it("defaults to a 1m collector, a 6h TTL, no quota, watermarks 90/80 and a kept cache", () => {
    const config = loadDfdaemonConfig({});
    assert.deepEqual(
      [config.gcInterval, config.taskTtl, config.diskQuota, config.highWatermark, config.lowWatermark, config.keepStorage],
      [60_000, 6 * 3_600_000, 0, 90, 80, true],
    );
  });

  it("reads durations, sizes and booleans from flags", () => {
    const config = loadDfdaemonConfig({ flags: { gcInterval: "30s", taskTtl: "1d", diskQuota: "50GiB", keepStorage: "false" } });
    assert.deepEqual([config.gcInterval, config.taskTtl, config.diskQuota, config.keepStorage], [30_000, 86_400_000, 50 * 2 ** 30, false]);
  });

  it("takes a task TTL longer than a timer can wait (it is an age, not a timer) but bounds real timers", () => {
    assert.equal(loadDfdaemonConfig({ flags: { taskTtl: "30d" } }).taskTtl, 30 * 86_400_000);
    assert.throws(() => loadDfdaemonConfig({ flags: { gcInterval: "30d" } }), /^LacewingError: invalid --gc-interval: must be at most/);
  });

  it("rejects a low watermark that is not below the high one, naming the key", () => {
    assert.throws(
      () => loadDfdaemonConfig({ flags: { highWatermark: "70", lowWatermark: "70" } }),
      (err: unknown) => isLacewingError(err) && err.code === "LW_ERR_CONFIG" && /lowWatermark/.test(err.message),
    );
    assert.throws(() => loadDfdaemonConfig({ flags: { highWatermark: "120" } }), /^LacewingError: invalid --high-watermark: must be a percentage/);
  });
});
